package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// Without an engine the answer is a quick no, so make test goes on at once
// with the local dependencies.
func TestDockerAnswersQuickly(t *testing.T) {
	start := time.Now()
	ok := dockerAnswers(context.Background())
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("asking for Docker took %v", d)
	}
	t.Logf("Docker answers: %v", ok)
}

// The command runs with the caller's environment and its exit status comes
// back; with TEST_DATABASE_URL set no container is started.
func TestRunsTheCommand(t *testing.T) {
	t.Setenv("TEST_DATABASE_URL", "postgres://example/")
	var log bytes.Buffer
	if err := run(context.Background(), []string{"--", "sh", "-c", `test "$TEST_DATABASE_URL" = postgres://example/`}, &log); err != nil {
		t.Fatalf("%v (%s)", err, log.String())
	}
	if !strings.Contains(log.String(), "TEST_DATABASE_URL is set") {
		t.Errorf("log %q", log.String())
	}
	if err := run(context.Background(), []string{"--", "false"}, &log); err == nil {
		t.Fatal("a failing command succeeded")
	}
	if err := run(context.Background(), nil, &log); err == nil {
		t.Fatal("no command ran")
	}
}
