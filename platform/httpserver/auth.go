package httpserver

import (
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// RequireToken guards admin routes: the request must carry
// "Authorization: Bearer <token>". A missing or wrong token is 401; the
// comparison takes constant time.
func RequireToken(token string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			got, ok := strings.CutPrefix(c.Request().Header.Get(echo.HeaderAuthorization), "Bearer ")
			if !ok || token == "" || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
				c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="admin"`)
				return NewError(http.StatusUnauthorized, "unauthorized", "this endpoint needs the admin token")
			}
			return next(c)
		}
	}
}
