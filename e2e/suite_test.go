package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/example/sagasuite/platform/etcdtest"
	"github.com/example/sagasuite/platform/kafkatest"
	"github.com/example/sagasuite/platform/postgrestest"
	"github.com/example/sagasuite/platform/procfile"
)

// suite is the running system the tests drive: real service processes
// built from this repository, a Kafka-protocol broker, PostgreSQL, and an
// OTLP receiver that collects every span the services export.
var suite struct {
	brokers  []string
	etcd     []string
	adminURL string
	dbPrefix string
	binDir   string
	logDir   string
	spans    *receiver
	procs    map[string]*proc
	urls     map[string]string // process name → base URL
}

type proc struct {
	name   string
	binary string
	cmd    *exec.Cmd
	env    []string
	log    string
}

const adminToken = "e2e-admin-token"

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("e2e: skipped with -short (starts every service)")
		os.Exit(0)
	}
	code, err := runSuite(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func runSuite(m *testing.M) (int, error) {
	tmp, err := os.MkdirTemp("", "sagasuite-e2e-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	suite.binDir, suite.logDir = filepath.Join(tmp, "bin"), filepath.Join(tmp, "logs")
	_ = os.MkdirAll(suite.logDir, 0o755)

	if err := build(suite.binDir); err != nil {
		return 0, err
	}
	if suite.adminURL, err = postgrestest.Server(); err != nil {
		return 0, err
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	suite.dbPrefix = "e2e_" + hex.EncodeToString(b)
	defer dropDatabases()

	var stopKafka, stopEtcd func()
	if suite.brokers, stopKafka, err = kafkatest.Start(); err != nil {
		return 0, err
	}
	defer stopKafka()
	if suite.etcd, stopEtcd, err = etcdtest.Start(); err != nil {
		return 0, err
	}
	defer stopEtcd()
	if suite.spans, err = startReceiver(); err != nil {
		return 0, err
	}
	defer suite.spans.Close()

	suite.procs, suite.urls = map[string]*proc{}, map[string]string{}
	defer stopAll()
	groups, err := procfile.Read("../dev.procfile")
	if err != nil {
		return 0, err
	}
	// Every process of make dev but the broker and etcd (the suite's own),
	// each on a free port: an address of make dev's in another process's
	// environment (SERVICE_ADDR, PSP_URL) is rewritten to the new port.
	var procs []procfile.Process
	ports := map[string]string{} // make dev's port → this suite's
	for _, g := range groups {
		for _, p := range g {
			if p.ReadyURL() == "" {
				continue
			}
			port, err := freePort()
			if err != nil {
				return 0, err
			}
			_, devPort, _ := strings.Cut(p.Env["HTTP_ADDR"], ":")
			ports[devPort] = port
			suite.urls[p.Name] = "http://127.0.0.1:" + port
			procs = append(procs, p)
		}
	}
	for _, p := range procs {
		env := []string{
			"ETCD_ENDPOINTS=" + strings.Join(suite.etcd, ","),
			"DATABASE_URL=" + suite.adminURL,
			"DATABASE_NAME=" + suite.dbPrefix + "_" + p.Binary,
			"KAFKA_BROKERS=" + strings.Join(suite.brokers, ","),
			"ADMIN_TOKEN=" + adminToken,
			"OTEL_EXPORTER_OTLP_ENDPOINT=" + suite.spans.URL,
			"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
			"OTEL_BSP_SCHEDULE_DELAY=50",
			"LOG_LEVEL=debug",
		}
		env = append(env, procfile.RuntimeEnv(os.LookupEnv, runtime.NumCPU())...)
		for k, v := range p.Env {
			for dev, port := range ports {
				v = strings.ReplaceAll(v, "127.0.0.1:"+dev, "127.0.0.1:"+port)
			}
			if k == "HTTP_ADDR" {
				v = strings.TrimPrefix(suite.urls[p.Name], "http://")
			}
			env = append(env, k+"="+v)
		}
		env = append(env, tuning(p.Binary)...)
		if err := start(p.Name, p.Binary, env); err != nil {
			return 0, err
		}
	}
	hosts := map[string]bool{}
	for _, u := range suite.urls {
		hosts[strings.TrimPrefix(u, "http://")] = true
	}
	api, err := newContract("../api/openapi.yaml", http.DefaultTransport, hosts)
	if err != nil {
		return 0, err
	}
	http.DefaultTransport = api
	for name := range suite.procs {
		if err := waitReady(name, 60*time.Second); err != nil {
			return 0, err
		}
	}
	// One order through the whole saga: every consumer group has joined.
	if err := warmUp(); err != nil {
		return 0, err
	}
	code := m.Run()
	if api.report(os.Stderr) && code == 0 {
		code = 1
	}
	if checkWire(os.Stderr) && code == 0 {
		code = 1
	}
	if code != 0 {
		dumpLogs()
	}
	return code, nil
}

// tuning is what the tests change of make dev's settings, by binary:
// shorter timeouts and leases, so that failures show within a test.
func tuning(binary string) []string {
	return map[string][]string{
		"psp": {"PSP_KEY_FILE=" + filepath.Join(filepath.Dir(suite.logDir), "psp-keys.json"),
			"PSP_LEDGER_FILE=" + filepath.Join(filepath.Dir(suite.logDir), "psp-ledger.jsonl")},
		"inventory": {"LEADER_TTL=1s", "RESERVATION_TTL=10m", "EXPIRY_INTERVAL=250ms"},
		// Sidecars register the replicas; orders finds inventory through etcd.
		"sidecar": {"LEASE_TTL=2s", "CHECK_INTERVAL=200ms"},
		// An order whose charge is unknown is given up within the saga
		// timeout of orders (3 s).
		"payments": {"BREAKER_OPEN_FOR=2s", "PSP_TIMEOUT=1s", "PSP_DECIDE_WITHIN=1s"},
		"orders": {"SAGA_TIMEOUT=3s",
			// Tests stall sagas on purpose (paused consumers, killed replicas):
			// those must not make orders shed the next test's orders.
			"SAGA_TARGET=30s", "BREAKER_OPEN_FOR=1s", "LEADER_TTL=1s"},
	}[binary]
}

// buildVersion is what the e2e build stamps into every binary; the
// metrics test checks each process reports it.
const buildVersion = "e2e-build"

// build compiles the service binaries from this checkout with
// deploy/build.sh, the command the Dockerfile runs, so a broken image
// build fails here. The build cache is shared with `go test` (make test
// exports CGO_ENABLED=0, as the script does).
func build(dir string) error {
	cmd := exec.Command("deploy/build.sh", dir) // every command, as make build
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "VERSION="+buildVersion)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("build services: %v\n%s", err, out)
	}
	return nil
}

func start(name, binary string, env []string) error {
	logPath := filepath.Join(suite.logDir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(suite.binDir, binary))
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	suite.procs[name] = &proc{name: name, binary: binary, cmd: cmd, env: env, log: logPath}
	go func() { _ = cmd.Wait(); f.Close() }()
	return nil
}

func stopAll() {
	var wg sync.WaitGroup
	for _, p := range suite.procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stop(p)
		}()
	}
	wg.Wait()
}

func stop(p *proc) {
	if p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGCONT)
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if p.cmd.ProcessState != nil || p.cmd.Process.Signal(syscall.Signal(0)) != nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = p.cmd.Process.Kill()
}

func dumpLogs() {
	for _, p := range suite.procs {
		b, _ := os.ReadFile(p.log)
		lines := strings.Split(string(b), "\n")
		if len(lines) > 40 {
			lines = lines[len(lines)-40:]
		}
		fmt.Fprintf(os.Stderr, "--- last lines of %s ---\n%s\n", p.name, strings.Join(lines, "\n"))
	}
}

func dropDatabases() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, suite.adminURL)
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	for _, p := range suite.procs {
		_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{suite.dbPrefix + "_" + p.binary}.Sanitize()+" WITH (FORCE)")
	}
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port, nil
}

func waitReady(name string, within time.Duration) error {
	deadline := time.Now().Add(within)
	var last string
	for time.Now().Before(deadline) {
		resp, err := http.Get(suite.urls[name] + "/readyz")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = string(b)
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond)
	}
	dumpLogs()
	return fmt.Errorf("%s not ready within %v: %s", name, within, last)
}

// warmUp places the first order the moment every process is ready: it
// must be accepted (ready means ready: orders has found inventory, every
// consumer holds its partitions) and confirmed.
func warmUp() error {
	status, body, err := call(http.MethodPost, suite.urls["orders"]+"/orders", orderBody("warm-up", "SKU-0001", 1, "4242424242424242"), nil)
	if err != nil || status != http.StatusAccepted {
		dumpLogs()
		return fmt.Errorf("the first order, sent when every /readyz said 200: %d %s %v", status, body, err)
	}
	var o orderView
	_ = json.Unmarshal(body, &o)
	if got, err := awaitOrder(o.OrderID, 30*time.Second); err != nil || got.Status != "CONFIRMED" {
		dumpLogs()
		return fmt.Errorf("warm-up order: %+v %v", got, err)
	}
	return nil
}

// ---- HTTP helpers ----

type orderView struct {
	OrderID    string `json:"order_id"`
	CustomerID string `json:"customer_id"`
	Status     string `json:"status"`
	Reason     string `json:"reason"`
	Items      []struct {
		SKU            string `json:"sku"`
		Quantity       int64  `json:"quantity"`
		UnitPriceCents int64  `json:"unit_price_cents"`
	} `json:"items"`
	TotalCents int64     `json:"total_cents"`
	Currency   string    `json:"currency"`
	Notes      int       `json:"notes"`
	Version    int64     `json:"version"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

type product struct {
	SKU        string `json:"sku"`
	PriceCents int64  `json:"price_cents"`
	Available  int64  `json:"available"`
	Reserved   int64  `json:"reserved"`
}

type reservation struct {
	OrderID  string `json:"order_id"`
	SKU      string `json:"sku"`
	Quantity int64  `json:"quantity"`
	Status   string `json:"status"`
}

type paymentView struct {
	PaymentID   string `json:"payment_id"`
	OrderID     string `json:"order_id"`
	AmountCents int64  `json:"amount_cents"`
	Status      string `json:"status"`
	CardLast4   string `json:"card_last4"`
	Reason      string `json:"reason"`
}

type errorBody struct {
	Error struct {
		Code    string            `json:"code"`
		Message string            `json:"message"`
		Fields  map[string]string `json:"fields"`
	} `json:"error"`
}

func orderBody(customer, sku string, qty int, card string) []byte {
	b, _ := json.Marshal(map[string]any{"customer_id": customer, "items": []map[string]any{{"sku": sku, "quantity": qty}},
		"payment": map[string]string{"card_number": card}})
	return b
}

func call(method, url string, body []byte, header map[string]string) (int, []byte, error) {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	status, body, err := call(http.MethodGet, url, nil, nil)
	if err != nil || status != http.StatusOK {
		t.Fatalf("GET %s: %d %s %v", url, status, body, err)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v: %s", url, err, body)
	}
}

func getOrder(id string) (orderView, error) {
	var o orderView
	status, body, err := call(http.MethodGet, suite.urls["orders"]+"/orders/"+id, nil, nil)
	if err != nil || status != http.StatusOK {
		return o, fmt.Errorf("get order %s: %d %s %v", id, status, body, err)
	}
	return o, json.Unmarshal(body, &o)
}

// place posts an order and returns it as accepted.
func place(t *testing.T, customer, sku string, qty int, card string) orderView {
	t.Helper()
	o, _ := placeAt(t, customer, sku, qty, card)
	return o
}

// placeAt is place that also returns the Event-Position of the write.
func placeAt(t *testing.T, customer, sku string, qty int, card string) (orderView, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, suite.urls["orders"]+"/orders", bytes.NewReader(orderBody(customer, sku, qty, card)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /orders: %d %s", resp.StatusCode, body)
	}
	var o orderView
	if err := json.Unmarshal(body, &o); err != nil {
		t.Fatal(err)
	}
	pos := resp.Header.Get("Event-Position")
	if pos == "" {
		t.Fatal("POST /orders answered without Event-Position")
	}
	return o, pos
}

// waitTerminal follows the order to its outcome with one long poll
// (GET /orders/{id}?wait=), the way a client should.
func waitTerminal(t *testing.T, id string) orderView {
	t.Helper()
	o, err := awaitOrder(id, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if o.Status == "PENDING" {
		t.Fatalf("order %s still PENDING after 20 s", id)
	}
	return o
}

// awaitOrder is GET /orders/{id}?wait=d.
func awaitOrder(id string, d time.Duration) (orderView, error) {
	var o orderView
	status, body, err := call(http.MethodGet, suite.urls["orders"]+"/orders/"+id+"?wait="+d.String(), nil, nil)
	if err != nil || status != http.StatusOK {
		return o, fmt.Errorf("GET order %s?wait=%v: %d %s %v", id, d, status, body, err)
	}
	return o, json.Unmarshal(body, &o)
}

func productOf(t *testing.T, sku string) product {
	t.Helper()
	var p product
	getJSON(t, suite.urls["inventory-2"]+"/products/"+sku, &p)
	return p
}

func reservationsOf(t *testing.T, id string) []reservation {
	t.Helper()
	var rs []reservation
	getJSON(t, suite.urls["inventory-1"]+"/reservations?order_id="+id, &rs)
	return rs
}

func paymentsOf(t *testing.T, id string) []paymentView {
	t.Helper()
	var ps []paymentView
	getJSON(t, suite.urls["payments"]+"/payments?order_id="+id, &ps)
	return ps
}

// pspLedger is the provider's own record of the money it holds, by
// idempotency key: the truth payments' records are checked against.
func pspLedger(t *testing.T) map[string]pspCharge {
	t.Helper()
	status, body, err := call(http.MethodGet, suite.urls["psp"]+"/admin/charges", nil, map[string]string{"Authorization": "Bearer " + adminToken})
	var l struct {
		Charges []pspCharge `json:"charges"`
	}
	if err != nil || status != http.StatusOK || json.Unmarshal(body, &l) != nil {
		t.Fatalf("psp ledger: %d %s %v", status, body, err)
	}
	out := map[string]pspCharge{}
	for _, c := range l.Charges {
		out[c.IdempotencyKey] = c
	}
	return out
}

type pspCharge struct {
	ChargeID       string `json:"charge_id"`
	IdempotencyKey string `json:"idempotency_key"`
	AmountCents    int64  `json:"amount_cents"`
	Status         string `json:"status"`
}

// heldFor is what the provider holds for order id: the amount of its
// charge unless refunded.
func heldFor(ledger map[string]pspCharge, id string) int64 {
	if c, ok := ledger["charge-"+id]; ok && c.Status == "approved" {
		return c.AmountCents
	}
	return 0
}

// eventually retries check until it returns nil or 20 s pass.
func eventually(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		if err = check(); err == nil {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("%s: %v", what, err)
}

// setConsumption pauses or resumes a process's Kafka consumption.
func setConsumption(t *testing.T, proc string, paused bool) {
	t.Helper()
	body := []byte(`{"paused": ` + strconv.FormatBool(paused) + `}`)
	auth := map[string]string{"Authorization": "Bearer " + adminToken}
	if status, b, err := call(http.MethodPut, suite.urls[proc]+"/admin/consumption", body, auth); status != http.StatusOK {
		t.Fatalf("consumption of %s paused=%v: %d %s %v", proc, paused, status, b, err)
	}
}
