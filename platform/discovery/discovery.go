// Package discovery lets services find each other through etcd instead of
// fixed addresses. An instance is a key /services/<name>/<instance-id>
// holding its address, version and start time, attached to a lease: it
// disappears when its registrant deregisters (at once) or stops renewing
// the lease (within the TTL, e.g. after kill -9). A Resolver watches a
// service's prefix and balances calls over the live instances.
//
// Services do not register themselves: the sidecar (cmd/sidecar) does it
// for them while their /readyz is green. To drop discovery, give callers a
// fixed address (a Resolver-shaped Static picker) and delete the sidecars.
package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/example/sagasuite/platform/lifecycle"
	"github.com/example/sagasuite/platform/observe"
)

// Prefix is where instances live.
const Prefix = "/services/"

// ErrNoInstances means no instance of the service is registered.
var ErrNoInstances = errors.New("discovery: no instance registered")

// Instance is one registered process.
type Instance struct {
	Service   string    `json:"service"`
	ID        string    `json:"id"`
	Addr      string    `json:"addr"` // base URL, e.g. http://127.0.0.1:8083
	Version   string    `json:"version"`
	StartedAt time.Time `json:"started_at"`
}

func key(service, id string) string { return Prefix + service + "/" + id }

// Registration is a live entry; Close removes it at once.
type Registration struct {
	cli   *clientv3.Client
	lease clientv3.LeaseID
	lost  chan struct{}
}

// Register puts inst under a lease of ttl and keeps the lease alive until
// ctx ends or Close. Lost is closed if renewal stops (etcd unreachable):
// the entry then expires and the caller should register again.
func Register(ctx context.Context, cli *clientv3.Client, inst Instance, ttl time.Duration) (*Registration, error) {
	if inst.Service == "" || inst.ID == "" || inst.Addr == "" {
		return nil, errors.New("discovery: service, id and addr are required")
	}
	lease, err := cli.Grant(ctx, int64(max(1, ttl/time.Second)))
	if err != nil {
		return nil, fmt.Errorf("grant lease: %w", err)
	}
	b, _ := json.Marshal(inst)
	if _, err := cli.Put(ctx, key(inst.Service, inst.ID), string(b), clientv3.WithLease(lease.ID)); err != nil {
		return nil, fmt.Errorf("register %s/%s: %w", inst.Service, inst.ID, err)
	}
	alive, err := cli.KeepAlive(ctx, lease.ID)
	if err != nil {
		return nil, fmt.Errorf("keep lease alive: %w", err)
	}
	r := &Registration{cli: cli, lease: lease.ID, lost: make(chan struct{})}
	go func() {
		for range alive { // drained until the lease ends or ctx is done
		}
		close(r.lost)
	}()
	return r, nil
}

// Lost is closed when the lease stopped being renewed.
func (r *Registration) Lost() <-chan struct{} { return r.lost }

// Close deregisters at once by revoking the lease.
func (r *Registration) Close(ctx context.Context) error {
	if _, err := r.cli.Revoke(ctx, r.lease); err != nil {
		return fmt.Errorf("deregister: %w", err)
	}
	return nil
}

// Resolver keeps the live instances of one service, from a watch.
type Resolver struct {
	cli     *clientv3.Client
	service string
	next    atomic.Uint64
	list    atomic.Pointer[[]Instance]
	errors  metric.Int64Counter
	ready   chan struct{}
	once    sync.Once
}

// NewResolver returns a resolver for service, reporting through tel; Run
// fills it.
func NewResolver(cli *clientv3.Client, service string, tel observe.Bundle) (*Resolver, error) {
	if err := tel.For("resolver " + service); err != nil {
		return nil, err
	}
	meter := tel.Meter("github.com/example/sagasuite/platform/discovery")
	r := &Resolver{cli: cli, service: service, ready: make(chan struct{})}
	empty := []Instance{}
	r.list.Store(&empty)
	var err error
	if r.errors, err = meter.Int64Counter("discovery.resolution.errors", metric.WithDescription("Picks that found no instance, and watch failures."),
		metric.WithUnit("{error}")); err != nil {
		return nil, err
	}
	gauge, err := meter.Int64ObservableGauge("discovery.instances", metric.WithDescription("Live registered instances of a service, as this process sees them."))
	if err != nil {
		return nil, err
	}
	attrs := metric.WithAttributes(attribute.String("service", service))
	_, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(gauge, int64(len(*r.list.Load())), attrs)
		return nil
	}, gauge)
	return r, err
}

// Run lists the instances and follows changes until ctx ends, re-listing
// after a broken watch.
func (r *Resolver) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		err := r.follow(ctx)
		if ctx.Err() != nil {
			return nil
		}
		r.errors.Add(ctx, 1, metric.WithAttributes(attribute.String("service", r.service), attribute.String("kind", "watch")))
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
		_ = err
	}
	return nil
}

func (r *Resolver) follow(ctx context.Context) error {
	prefix := Prefix + r.service + "/"
	resp, err := r.cli.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return err
	}
	current := map[string]Instance{}
	for _, kv := range resp.Kvs {
		var in Instance
		if json.Unmarshal(kv.Value, &in) == nil {
			current[string(kv.Key)] = in
		}
	}
	r.publish(current)
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	for wr := range r.cli.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1)) {
		if err := wr.Err(); err != nil {
			return err
		}
		for _, ev := range wr.Events {
			if ev.Type == clientv3.EventTypeDelete {
				delete(current, string(ev.Kv.Key))
				continue
			}
			var in Instance
			if json.Unmarshal(ev.Kv.Value, &in) == nil {
				current[string(ev.Kv.Key)] = in
			}
		}
		r.publish(current)
	}
	return ctx.Err()
}

func (r *Resolver) publish(m map[string]Instance) {
	list := make([]Instance, 0, len(m))
	for _, in := range m {
		list = append(list, in)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
	r.list.Store(&list)
	r.once.Do(func() { close(r.ready) })
}

// Ready is closed once the first listing is in.
func (r *Resolver) Ready() <-chan struct{} { return r.ready }

// Instances returns the live instances, sorted by ID.
func (r *Resolver) Instances() []Instance { return *r.list.Load() }

// Pick returns the next instance in round-robin order.
func (r *Resolver) Pick() (Instance, error) {
	list := *r.list.Load()
	if len(list) == 0 {
		r.errors.Add(context.Background(), 1, metric.WithAttributes(attribute.String("service", r.service), attribute.String("kind", "empty")))
		return Instance{}, fmt.Errorf("%s: %w", r.service, ErrNoInstances)
	}
	return list[r.next.Add(1)%uint64(len(list))], nil
}

// Static is a fixed list of instances, for callers without discovery.
type Static struct {
	instances []Instance
	next      atomic.Uint64
}

// NewStatic returns a picker over fixed addresses.
func NewStatic(service string, addrs ...string) *Static {
	s := &Static{}
	for i, a := range addrs {
		s.instances = append(s.instances, Instance{Service: service, ID: fmt.Sprint(i), Addr: a})
	}
	return s
}

// Pick returns the next address in round-robin order.
func (s *Static) Pick() (Instance, error) {
	if len(s.instances) == 0 {
		return Instance{}, ErrNoInstances
	}
	return s.instances[s.next.Add(1)%uint64(len(s.instances))], nil
}

// Instances returns the fixed list.
func (s *Static) Instances() []Instance { return s.instances }

// Dial connects to etcd (ETCD_ENDPOINTS) with quiet logging and a bounded
// dial, as every process of the suite does.
func Dial(endpoints []string) (*clientv3.Client, error) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return nil, fmt.Errorf("connect to etcd: %w", err)
	}
	return cli, nil
}

// Ping checks that etcd answers: the readiness check for etcd.
func Ping(ctx context.Context, cli *clientv3.Client) error {
	if _, err := cli.Get(ctx, "/health-probe", clientv3.WithCountOnly()); err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	return nil
}

// Etcd is an etcd client as a process component: readiness pings it,
// Close closes it.
type Etcd struct{ *clientv3.Client }

// Connect is Dial, as a component.
func Connect(endpoints []string) (Etcd, error) {
	cli, err := Dial(endpoints)
	return Etcd{cli}, err
}

// Ready is a readiness check: nil while etcd answers.
func (e Etcd) Ready(ctx context.Context) error { return Ping(ctx, e.Client) }

// Lifecycle: degradable readiness (discovery and election go on from
// what they know while etcd is away), the client closed at stop.
func (e Etcd) Lifecycle() lifecycle.Parts {
	return lifecycle.Parts{Ready: e.Ready, Degradable: true, Close: e.Close}
}
