package httpserver

import (
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
)

// Error is a failure a client should see. It is written as
// {"error": {"code", "message", "fields"}}.
type Error struct {
	Status  int
	Code    string // snake_case, stable: clients match on it
	Message string
	// Fields maps a request field to what is wrong with it (validation only).
	Fields map[string]string
}

func (e *Error) Error() string {
	if len(e.Fields) == 0 {
		return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message)
	}
	keys := make([]string, 0, len(e.Fields))
	for k := range e.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ": " + e.Fields[k]
	}
	return fmt.Sprintf("%d %s: %s (%s)", e.Status, e.Code, e.Message, strings.Join(parts, "; "))
}

// NewError returns an error answered with status, code and message.
func NewError(status int, code, message string) *Error {
	return &Error{Status: status, Code: code, Message: message}
}

// Invalid returns a 400 validation_failed error listing every bad field;
// nil when fields is empty, so callers can collect problems and return once.
func Invalid(fields map[string]string) error {
	if len(fields) == 0 {
		return nil
	}
	return &Error{Status: http.StatusBadRequest, Code: "validation_failed", Message: "the request has invalid fields", Fields: fields}
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string            `json:"code"`
	Message string            `json:"message"`
	Fields  map[string]string `json:"fields,omitempty"`
}

func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}
