package containertest_test

import (
	"testing"
	"time"

	"github.com/example/sagasuite/platform/containertest"
)

// Without an engine the answer is a quick no, so tests fall back at once.
func TestDockerAnswersQuickly(t *testing.T) {
	start := time.Now()
	ok := containertest.DockerAnswers()
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("asking for Docker took %v", d)
	}
	if !ok {
		if _, used, err := containertest.Postgres(); used || err != nil {
			t.Fatalf("no engine, yet Postgres used=%v err=%v", used, err)
		}
		t.Log("no Docker engine: tests use the local PostgreSQL and an in-process broker")
		return
	}
	url, used, err := containertest.Postgres()
	if !used || err != nil || url == "" {
		t.Fatalf("engine answers, Postgres: %q %v %v", url, used, err)
	}
}
