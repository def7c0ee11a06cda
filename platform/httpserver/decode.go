package httpserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/labstack/echo/v4"
)

// Bind decodes the request body as one JSON value into v, rejecting unknown
// fields and trailing data, and answers 400 invalid_json, 413
// payload_too_large or 415 unsupported_media_type.
func Bind(c echo.Context, v any) error {
	if ct := c.Request().Header.Get(echo.HeaderContentType); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != echo.MIMEApplicationJSON && mt != "application/cloudevents+json") {
			return NewError(http.StatusUnsupportedMediaType, "unsupported_media_type", "send the body as application/json")
		}
	}
	dec := json.NewDecoder(c.Request().Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return decodeError(err)
		}
		return NewError(http.StatusBadRequest, "invalid_json", "the body holds more than one JSON value")
	}
	return nil
}

func decodeError(err error) error {
	var tooLarge *http.MaxBytesError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &tooLarge):
		return tooLargeError(tooLarge.Limit)
	case errors.Is(err, io.EOF):
		return NewError(http.StatusBadRequest, "invalid_json", "the body is empty")
	case errors.As(err, &typeErr):
		return &Error{Status: http.StatusBadRequest, Code: "invalid_json", Message: "a field has the wrong JSON type",
			Fields: map[string]string{typeErr.Field: "must be " + typeErr.Type.String()}}
	default:
		// Covers syntax errors and `json: unknown field "x"`.
		return NewError(http.StatusBadRequest, "invalid_json", "the body is not valid JSON for this endpoint: "+err.Error())
	}
}

func tooLargeError(limit int64) *Error {
	return NewError(http.StatusRequestEntityTooLarge, "payload_too_large", fmt.Sprintf("the body is larger than %d bytes", limit))
}
