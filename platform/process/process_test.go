package process_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/example/sagasuite/platform/faults"
	"github.com/example/sagasuite/platform/httpserver"
	"github.com/example/sagasuite/platform/lifecycle"
	"github.com/example/sagasuite/platform/process"
	"github.com/example/sagasuite/platform/telemetry"
	"github.com/example/sagasuite/platform/tlsfiles"
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

// With TLS_CERT_FILE and TLS_KEY_FILE the process serves HTTPS only: a
// client trusting its CA gets an answer, plain HTTP gets none.
func TestServesHTTPSWithItsCertificate(t *testing.T) {
	dir := t.TempDir()
	ca, err := tlsfiles.NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := ca.Issue("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"ca.pem": ca.PEM, "cert.pem": cert, "key.pem": key} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	addr := freeAddr(t)
	p := newProcess(t, process.Config{Name: "process-test", HTTPAddr: addr, AdminToken: "tok", StopTimeout: 2 * time.Second,
		TLSCertFile: filepath.Join(dir, "cert.pem"), TLSKeyFile: filepath.Join(dir, "key.pem")})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	tr, err := tlsfiles.Client(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: tr, Timeout: time.Second}
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := client.Get("https://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("healthz over https: %d", resp.StatusCode)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer over https: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if resp, err := (&http.Client{Timeout: time.Second}).Get("http://" + addr + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("plain HTTP answered 200 on the TLS listener")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
