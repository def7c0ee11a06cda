package httpserver

import (
	"context"
	"net/http"
	"net/http/pprof"

	"github.com/labstack/echo/v4"
)

// PprofRoutes serves Go's on-demand profiles under /debug/pprof on g, the
// group at /admin (behind the token), beside the continuous ones:
// go tool pprof -http=: -H "Authorization: Bearer $ADMIN_TOKEN" http://…/admin/debug/pprof/profile
func PprofRoutes(g *echo.Group) {
	g.GET("/debug/pprof/*", echo.WrapHandler(http.StripPrefix("/admin", http.HandlerFunc(pprof.Index))))
	g.GET("/debug/pprof/profile", echo.WrapHandler(http.HandlerFunc(pprof.Profile)))
}

// JSON serves what f returns as JSON: a status endpoint in one line
// (GET /admin/leader).
func JSON[T any](f func(context.Context) (T, error)) echo.HandlerFunc {
	return func(c echo.Context) error {
		v, err := f(c.Request().Context())
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, v)
	}
}
