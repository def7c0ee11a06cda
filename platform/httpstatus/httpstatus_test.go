package httpstatus_test

import (
	"testing"

	"github.com/example/sagasuite/platform/httpstatus"
)

func TestTheCallersFaultIsNeverTransient(t *testing.T) {
	for status, want := range map[int]bool{
		200: false, 201: false, 302: false,
		400: false, 401: false, 402: false, 403: false, 404: false, 413: false, 422: false,
		408: true, 409: true, 425: true, 429: true,
		500: true, 502: true, 503: true, 504: true,
	} {
		if got := httpstatus.Transient(status); got != want {
			t.Errorf("%d: transient %v, want %v", status, got, want)
		}
	}
}
