package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

const adminToken = "chaos-admin-token"

// proc is one process of the suite, which chaos may kill and restart.
type proc struct {
	name, binary string
	env          []string
	url          string // its HTTP base URL; empty for the broker and etcd
	logPath      string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

func (p *proc) start() error {
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.binary) // #nosec G204 -- the suite's own binaries, from the -bin folder
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); _ = f.Close(); close(done) }()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	return nil
}

func (p *proc) running() (*exec.Cmd, chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd, p.done
}

// kill9 kills the process without a chance to clean up.
func (p *proc) kill9() {
	cmd, done := p.running()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// stop asks the process to stop and kills it after grace; it reports how
// long the process took.
func (p *proc) stop(grace time.Duration) (time.Duration, bool) {
	cmd, done := p.running()
	if cmd == nil {
		return 0, true
	}
	start := time.Now()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		return time.Since(start), true
	case <-time.After(grace):
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
		return time.Since(start), false
	}
}

func (p *proc) alive() bool {
	_, done := p.running()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// suite is the processes, in start order.
type suite struct {
	o        options
	procs    []*proc
	byName   map[string]*proc
	brokers  string
	dbPrefix string
	admin    *http.Client
}

func newSuite(o options) (*suite, error) {
	logs := filepath.Join(o.dir, "logs")
	if err := os.MkdirAll(logs, 0o750); err != nil {
		return nil, err
	}
	port := func(n int) string { return strconv.Itoa(o.portBase + n) }
	s := &suite{o: o, byName: map[string]*proc{}, brokers: "127.0.0.1:" + port(92),
		dbPrefix: fmt.Sprintf("chaos_%d", o.seed), admin: &http.Client{Timeout: 5 * time.Second}}
	common := []string{
		"DATABASE_URL=" + o.dbURL, "KAFKA_BROKERS=" + s.brokers, "ETCD_ENDPOINTS=127.0.0.1:" + port(379),
		"ADMIN_TOKEN=" + adminToken, "LOG_LEVEL=warn", "LEADER_TTL=2s", "OTEL_EXPORTER_OTLP_ENDPOINT=", "PYROSCOPE_SERVER_ADDRESS=",
	}
	pspURL := "http://127.0.0.1:" + port(90)
	add := func(name, binary, httpPort string, env ...string) {
		p := &proc{name: name, binary: filepath.Join(o.bin, binary), logPath: filepath.Join(logs, name+".log")}
		if httpPort != "" {
			p.url = "http://127.0.0.1:" + httpPort
			env = append(env, "HTTP_ADDR=127.0.0.1:"+httpPort)
		}
		p.env = append(append([]string{}, common...), env...)
		s.procs = append(s.procs, p)
		s.byName[name] = p
	}
	add("kafka", "devkafka", "", "KAFKA_PORT="+port(92), "KAFKA_DATA_DIR="+filepath.Join(o.dir, "kafka"))
	add("etcd", "devetcd", "", "ETCD_PORT="+port(379), "ETCD_DATA_DIR="+filepath.Join(o.dir, "etcd"))
	// A key file: psp is killed and restarted, and must still open the
	// tokens sealed before.
	// Its ledger too: the money invariant is checked against it.
	add("psp", "psp", port(90), "PSP_KEY_FILE="+filepath.Join(o.dir, "psp-keys.json"), "PSP_LEDGER_FILE="+filepath.Join(o.dir, "psp-ledger.jsonl"))
	for i, n := range []int{83, 84} {
		add(fmt.Sprintf("inventory-%d", i+1), "inventory", port(n), "INSTANCE_ID="+fmt.Sprintf("inventory-%d", i+1),
			"DATABASE_NAME="+s.dbPrefix+"_inventory", "SEED_STOCK="+strconv.Itoa(seedStock),
			"RESERVATION_TTL="+reservationTTL.String(), "EXPIRY_INTERVAL=1s")
	}
	// An order whose charge is unknown is given up well within orders'
	// SAGA_TIMEOUT (10 s here).
	add("payments", "payments", port(82), "INSTANCE_ID=payments-1", "DATABASE_NAME="+s.dbPrefix+"_payments", "PSP_URL="+pspURL,
		"PSP_CALL_LEASE=5s", "PSP_DECIDE_WITHIN=5s")
	add("orders", "orders", port(81), "INSTANCE_ID=orders-1", "DATABASE_NAME="+s.dbPrefix+"_orders", "PSP_URL="+pspURL,
		"SAGA_TIMEOUT=10s")
	for _, sc := range []struct{ name, svc, id string }{
		{"sidecar-inventory-1", "inventory", "inventory-1"}, {"sidecar-inventory-2", "inventory", "inventory-2"},
		{"sidecar-payments", "payments", "payments-1"}, {"sidecar-orders", "orders", "orders-1"},
	} {
		target := s.byName[sc.id]
		if target == nil {
			target = s.byName[sc.svc]
		}
		add(sc.name, "sidecar", port(1000+len(s.procs)), "SERVICE_NAME="+sc.svc, "INSTANCE_ID="+sc.id,
			"SERVICE_ADDR="+target.url, "LEASE_TTL=2s", "CHECK_INTERVAL=250ms")
	}
	return s, nil
}

// seedStock is each SKU's stock at the first start: low, so that the hot
// SKU runs out and some orders are REJECTED out_of_stock.
const seedStock = 400

// reservationTTL is inventory's reservation expiry here: below orders'
// SAGA_TIMEOUT (10 s), unlike in production, so that the expiry, not the
// watchdog, ends the sagas a fault holds up (a lagging inventory
// consumer, a stalled psp) and races their payments.
const reservationTTL = 6 * time.Second

func (s *suite) start(ctx context.Context) error {
	if err := s.dropDatabases(); err != nil {
		return err
	}
	for _, p := range s.procs {
		if err := p.start(); err != nil {
			return err
		}
	}
	return s.waitReady(ctx, 90*time.Second)
}

// waitReady waits until every process with an HTTP port answers /readyz.
func (s *suite) waitReady(ctx context.Context, within time.Duration) error {
	deadline := time.Now().Add(within)
	for _, p := range s.procs {
		if p.url == "" {
			continue
		}
		for !s.ready(p) {
			if time.Now().After(deadline) || ctx.Err() != nil {
				return fmt.Errorf("%s not ready within %v (see %s)", p.name, within, p.logPath)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

func (s *suite) ready(p *proc) bool {
	resp, err := s.admin.Get(p.url + "/readyz")
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// restart starts p again and returns how long it took to be ready (for
// the broker and etcd: until every process answers /readyz again).
func (s *suite) restart(ctx context.Context, p *proc) (time.Duration, error) {
	began := time.Now()
	if err := p.start(); err != nil {
		return 0, err
	}
	if p.url == "" {
		err := s.waitReady(ctx, 60*time.Second)
		return time.Since(began), err
	}
	for !s.ready(p) {
		if time.Since(began) > 60*time.Second || ctx.Err() != nil {
			return time.Since(began), fmt.Errorf("%s not ready within 60 s after its restart", p.name)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(began), nil
}

// ledger is what psp holds, by idempotency key: the amount of each
// charge not refunded (GET /admin/charges, its reconciliation view).
func (s *suite) ledger(ctx context.Context) (map[string]int64, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.byName["psp"].url+"/admin/charges", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := s.admin.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var l struct {
		Charges []struct {
			Key    string `json:"idempotency_key"`
			Amount int64  `json:"amount_cents"`
			Status string `json:"status"`
		} `json:"charges"`
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&l); err != nil {
		return nil, err
	}
	held := map[string]int64{}
	for _, c := range l.Charges {
		if c.Status == "approved" {
			held[c.Key] += c.Amount
		}
	}
	return held, nil
}

// adminPut sends an admin request to p.
func (s *suite) adminPut(p *proc, path, body string) error {
	req, _ := http.NewRequest(http.MethodPut, p.url+path, bytes.NewBufferString(body))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.admin.Do(req)
	if err != nil {
		return fmt.Errorf("PUT %s%s: %w", p.name, path, err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("PUT %s%s: status %d", p.name, path, resp.StatusCode)
	}
	return nil
}

// heal switches every fault off and starts whatever is not running.
func (s *suite) heal(ctx context.Context) error {
	for _, p := range s.procs {
		if !p.alive() {
			if err := p.start(); err != nil {
				return err
			}
		} else if cmd, _ := p.running(); cmd != nil {
			_ = cmd.Process.Signal(syscall.SIGCONT) // a fault cut short while it was stopped
		}
	}
	if err := s.waitReady(ctx, 60*time.Second); err != nil {
		return err
	}
	errs := []error{s.adminPut(s.byName["psp"], "/admin/provider-faults", `{"after_charge":"","rate":0}`)}
	for _, name := range []string{"psp", "inventory-1", "inventory-2", "payments", "orders"} {
		errs = append(errs, s.adminPut(s.byName[name], "/admin/faults", `{"latency_ms":0,"error_rate":0}`))
		if name != "psp" {
			errs = append(errs, s.adminPut(s.byName[name], "/admin/consumption", `{"paused":false}`))
		}
	}
	return errors.Join(errs...)
}

// stop stops the suite the way make dev does: sidecars, services, then
// etcd and the broker.
func (s *suite) stop() {
	for i := len(s.procs) - 1; i >= 0; i-- {
		s.procs[i].stop(10 * time.Second)
	}
}

func (s *suite) db(ctx context.Context, svc string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(s.o.dbURL)
	if err != nil {
		return nil, err
	}
	cfg.Database = s.dbPrefix + "_" + svc
	return pgx.ConnectConfig(ctx, cfg)
}

func (s *suite) dropDatabases() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.o.dbURL)
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	for _, svc := range []string{"orders", "payments", "inventory"} {
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{s.dbPrefix + "_" + svc}.Sanitize()+" WITH (FORCE)"); err != nil {
			return err
		}
	}
	return nil
}
