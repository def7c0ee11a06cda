package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestProbePassesOnlyWhenEveryURLAnswers2xx(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer ok.Close()
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "database: not reachable", http.StatusServiceUnavailable)
	}))
	defer down.Close()

	if err := run([]string{ok.URL, ok.URL + "/readyz"}, io.Discard); err != nil {
		t.Fatalf("healthy: %v", err)
	}
	if err := run([]string{ok.URL, down.URL}, io.Discard); err == nil {
		t.Fatal("a 503 passed the check")
	}
	if err := run([]string{"-timeout", "1s", "http://127.0.0.1:1/"}, io.Discard); err == nil {
		t.Fatal("a closed port passed the check")
	}
	if err := run(nil, io.Discard); err == nil {
		t.Fatal("no URL passed the check")
	}
}
