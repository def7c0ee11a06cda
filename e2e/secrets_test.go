package e2e

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Outside development mode a process without its admin token refuses to
// start and says why; no default token is ever used.
func TestNoAdminTokenNoStart(t *testing.T) {
	for _, binary := range []string{"orders", "payments", "inventory", "psp", "sidecar"} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cmd := exec.CommandContext(ctx, filepath.Join(suite.binDir, binary))
		cmd.Env = []string{"HTTP_ADDR=127.0.0.1:0", "SERVICE_NAME=inventory", "SERVICE_ADDR=http://127.0.0.1:1"} // no DEV_MODE, no ADMIN_TOKEN
		out, err := cmd.CombinedOutput()
		timedOut := ctx.Err() != nil
		cancel()
		if err == nil || timedOut {
			t.Errorf("%s started without ADMIN_TOKEN (err %v, still running after 10 s: %v)", binary, err, timedOut)
			continue
		}
		if !strings.Contains(string(out), "ADMIN_TOKEN") || !strings.Contains(string(out), "DEV_MODE") {
			t.Errorf("%s refused to start, but does not say why:\n%s", binary, out)
		}
	}
}
