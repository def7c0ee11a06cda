package process_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/example/sagasuite/platform/faults"
	"github.com/example/sagasuite/platform/httpserver"
	"github.com/example/sagasuite/platform/lifecycle"
	"github.com/example/sagasuite/platform/process"
	"github.com/example/sagasuite/platform/telemetry"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func status(t *testing.T, url, token string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

func newProcess(t *testing.T, cfg process.Config) *process.Process {
	t.Helper()
	tel, err := telemetry.Setup(context.Background(), cfg.Telemetry(), func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	p, err := process.New(tel, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func start(t *testing.T, p *process.Process, addr string) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for status(t, "http://"+addr+"/healthz", "") != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("the process did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(5 * time.Second):
			return errors.New("the process did not stop within 5 s")
		}
	}
}

// With ADMIN_ADDR set, the admin routes a service registers are served on
// that listener only, still behind the token; the public port answers 404
// for them.
func TestAdminRoutesOnTheirOwnListener(t *testing.T) {
	public, admin := freeAddr(t), freeAddr(t)
	p := newProcess(t, process.Config{Name: "process-test", HTTPAddr: public, AdminAddr: admin, AdminToken: "tok", StopTimeout: 2 * time.Second})
	(&faults.Injector{}).Routes(p.Admin)
	faults.Consumption{}.Routes(p.Admin)
	httpserver.PprofRoutes(p.Admin)
	stop := start(t, p, public)
	for path, want := range map[string]int{"/admin/faults": http.StatusOK, "/admin/consumption": http.StatusOK, "/admin/debug/pprof/": http.StatusOK} {
		if got := status(t, "http://"+admin+path, "tok"); got != want {
			t.Errorf("admin listener %s: %d, want %d", path, got, want)
		}
		if got := status(t, "http://"+admin+path, ""); got != http.StatusUnauthorized {
			t.Errorf("admin listener %s without the token: %d, want 401", path, got)
		}
		if got := status(t, "http://"+public+path, "tok"); got != http.StatusNotFound {
			t.Errorf("public listener %s: %d, want 404", path, got)
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
}

type component struct {
	ready       error
	ran, closed chan struct{}
}

func (c *component) Ready(context.Context) error { return c.ready }
func (c *component) Run(ctx context.Context) error {
	close(c.ran)
	<-ctx.Done()
	return nil
}
func (c *component) Close() error { close(c.closed); return nil }

func (c *component) Lifecycle() lifecycle.Parts {
	return lifecycle.Parts{Ready: c.Ready, Run: c.Run, Close: c.Close}
}

// Add takes what a component has: its readiness check decides /readyz,
// its Run runs with the server, and Close is called at stop. Nothing is
// there unless added: without components /readyz is 200 and there are no
// admin routes at all.
func TestAddWiresReadinessRunAndClose(t *testing.T) {
	addr := freeAddr(t)
	p := newProcess(t, process.Config{Name: "process-test", HTTPAddr: addr, AdminToken: "tok", StopTimeout: 2 * time.Second})
	c := &component{ready: errors.New("still starting"), ran: make(chan struct{}), closed: make(chan struct{})}
	p.Add("thing", c)
	stop := start(t, p, addr)
	<-c.ran
	if got := status(t, "http://"+addr+"/readyz", ""); got != http.StatusServiceUnavailable {
		t.Errorf("/readyz with a failing component: %d, want 503", got)
	}
	if got := status(t, "http://"+addr+"/admin/faults", "tok"); got != http.StatusNotFound {
		t.Errorf("/admin/faults without fault injection added: %d, want 404", got)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.closed:
	default:
		t.Error("Close was not called at stop")
	}
}
