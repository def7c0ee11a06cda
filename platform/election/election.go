// Package election runs singleton work (the saga watchdog, reservation
// expiry) on exactly one instance, using etcd's concurrency.Election: an
// instance campaigns, runs the job while it leads, and the job's context
// is cancelled the moment the etcd session (its lease) is lost.
//
// A deposed leader may not notice at once (a long GC pause, a partition),
// so leadership alone cannot stop it doing harm. Each term has a fencing
// token that only grows: the election key's creation revision, above the
// election's epoch (Token). The job passes it to Fence inside each write
// transaction, and the database refuses writes with a token lower than
// one already seen. The epoch is what keeps tokens growing when etcd
// loses its data (a new cluster, `make clean` with PostgreSQL kept): its
// revisions start again from 1, but a cluster without the epoch key
// starts a new epoch above every one the fencing table has seen.
//
// To drop it, run the job directly (every replica then runs it; the jobs
// here stay correct, only wasteful) and delete the Fence calls.
package election

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/example/sagasuite/platform/observe"
	"github.com/example/sagasuite/platform/postgres"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations is the fencing table's schema, for postgres.Migrate.
func Migrations() fs.FS { return postgres.Dir(migrations, "migrations") }

// ErrFenced means a newer leader has written: this one was deposed.
var ErrFenced = errors.New("election: fenced off, a newer leader exists")

// Config names an election. Name and InstanceID are required.
type Config struct {
	Name       string // e.g. "inventory-expiry"; the key prefix is /elections/<Name>
	InstanceID string
	// TTL of the session: how long a dead leader keeps leading; 0 means 5 s.
	TTL time.Duration
	// Every is how often a singleton (Setup) runs its scan while leading;
	// a singleton requires it, a bare Elector ignores it.
	Every time.Duration
}

// Elector campaigns for one election and runs a job while it leads.
type Elector struct {
	cli *clientv3.Client
	cfg Config
	tel observe.Bundle

	// floor is the highest epoch already used for fencing (the fencing
	// table's), or nil: a new epoch starts above it.
	floor func(ctx context.Context) (int64, error)

	mu      sync.Mutex
	leading bool
	changes metric.Int64Counter
}

// Token is a term's fencing token: the epoch in the high bits, above the
// etcd revision at which the term began (below 2^40), so tokens grow with
// revisions within an epoch and across epochs whatever the revisions.
func Token(epoch, revision int64) int64 { return epoch<<40 | revision }

// epochKey holds the election's epoch, outside the election's prefix (a
// key under it would stand as a candidate).
func (e *Elector) epochKey() string { return "/election-epochs/" + e.cfg.Name }

// epoch returns the election's epoch, starting a new one above every
// epoch used for fencing when etcd has none (a new cluster, or one that
// lost its data). Candidates racing to start it agree on one value.
func (e *Elector) epoch(ctx context.Context) (int64, error) {
	key := e.epochKey()
	resp, err := e.cli.Get(ctx, key)
	if err != nil {
		return 0, fmt.Errorf("read epoch: %w", err)
	}
	if len(resp.Kvs) == 0 {
		floor := int64(0)
		if e.floor != nil {
			if floor, err = e.floor(ctx); err != nil {
				return 0, fmt.Errorf("highest epoch fenced: %w", err)
			}
		}
		txn, err := e.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, strconv.FormatInt(floor+1, 10))).Else(clientv3.OpGet(key)).Commit()
		if err != nil {
			return 0, fmt.Errorf("start an epoch: %w", err)
		}
		if txn.Succeeded {
			e.tel.Logger.InfoContext(ctx, "new election epoch: etcd had none", "election", e.cfg.Name, "epoch", floor+1)
			return floor + 1, nil
		}
		resp = (*clientv3.GetResponse)(txn.Responses[0].GetResponseRange())
	}
	epoch, err := strconv.ParseInt(string(resp.Kvs[0].Value), 10, 64)
	if err != nil || epoch < 1 || epoch >= 1<<22 {
		return 0, fmt.Errorf("epoch %q of %s: not a number from 1 to 2^22", resp.Kvs[0].Value, e.cfg.Name)
	}
	return epoch, nil
}

// New returns an elector reporting through tel.
func New(cli *clientv3.Client, tel observe.Bundle, cfg Config) (*Elector, error) {
	if cli == nil || cfg.Name == "" || cfg.InstanceID == "" {
		return nil, errors.New("election: client, name and instance id are required")
	}
	if err := tel.For("election " + cfg.Name); err != nil {
		return nil, err
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 5 * time.Second
	}
	meter := tel.Meter("github.com/example/sagasuite/platform/election")
	e := &Elector{cli: cli, cfg: cfg, tel: tel}
	var err error
	if e.changes, err = meter.Int64Counter("election.leadership.changes", metric.WithDescription("Times this instance became or stopped being leader."),
		metric.WithUnit("{change}")); err != nil {
		return nil, err
	}
	gauge, err := meter.Int64ObservableGauge("election.leader", metric.WithDescription("1 while this instance leads the election, else 0."))
	if err != nil {
		return nil, err
	}
	attrs := metric.WithAttributes(attribute.String("election", cfg.Name), attribute.String("instance_id", cfg.InstanceID))
	_, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		v := int64(0)
		if e.IsLeader() {
			v = 1
		}
		o.ObserveInt64(gauge, v, attrs)
		return nil
	}, gauge)
	return e, err
}

func (e *Elector) prefix() string { return "/elections/" + e.cfg.Name }

// IsLeader reports whether this instance leads now.
func (e *Elector) IsLeader() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.leading
}

func (e *Elector) setLeading(ctx context.Context, v bool) {
	e.mu.Lock()
	changed := e.leading != v
	e.leading = v
	e.mu.Unlock()
	if changed {
		e.changes.Add(ctx, 1, metric.WithAttributes(attribute.String("election", e.cfg.Name), attribute.Bool("leader", v)))
	}
}

// Leader returns the current leader's instance ID ("" when none).
func (e *Elector) Leader(ctx context.Context) (string, error) {
	resp, err := e.cli.Get(ctx, e.prefix()+"/", clientv3.WithFirstCreate()...)
	if err != nil {
		return "", fmt.Errorf("read leader: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return "", nil
	}
	return string(resp.Kvs[0].Value), nil
}

// Status is what GET /admin/leader answers.
type Status struct {
	InstanceID string `json:"instance_id"`
	LeaderID   string `json:"leader_id"`
	IsLeader   bool   `json:"is_leader"`
}

// Status reports this instance and the current leader.
func (e *Elector) Status(ctx context.Context) (Status, error) {
	leader, err := e.Leader(ctx)
	return Status{InstanceID: e.cfg.InstanceID, LeaderID: leader, IsLeader: e.IsLeader()}, err
}

// Run campaigns until ctx ends. Each time this instance wins, job runs
// with the term's fencing token and a context cancelled when leadership
// is lost; when job returns (or is cancelled) the instance resigns and
// campaigns again.
func (e *Elector) Run(ctx context.Context, job func(ctx context.Context, token int64) error) error {
	for ctx.Err() == nil {
		if err := e.term(ctx, job); err != nil && ctx.Err() == nil {
			e.tel.Logger.WarnContext(ctx, "election term ended", "election", e.cfg.Name, "error", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
	return nil
}

func (e *Elector) term(ctx context.Context, job func(ctx context.Context, token int64) error) error {
	session, err := concurrency.NewSession(e.cli, concurrency.WithTTL(int(max(1, e.cfg.TTL/time.Second))), concurrency.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("open session: %w", err)
	}
	defer session.Close() // revokes the lease: the next leader is elected at once
	el := concurrency.NewElection(session, e.prefix())
	if err := el.Campaign(ctx, e.cfg.InstanceID); err != nil {
		return fmt.Errorf("campaign: %w", err)
	}
	epoch, err := e.epoch(ctx)
	if err != nil {
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer rcancel()
		_ = el.Resign(rctx)
		return err
	}
	if el.Rev() >= 1<<40 {
		return fmt.Errorf("etcd revision %d does not fit a fencing token", el.Rev())
	}
	token := Token(epoch, el.Rev())
	e.setLeading(ctx, true)
	defer e.setLeading(context.WithoutCancel(ctx), false)
	e.tel.Logger.InfoContext(ctx, "became leader", "election", e.cfg.Name, "fencing_token", token, "epoch", epoch, "revision", el.Rev())
	jctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-session.Done(): // the lease is gone: someone else may lead now
			e.tel.Logger.WarnContext(ctx, "leadership lost", "election", e.cfg.Name)
			cancel()
		case <-jctx.Done():
		}
	}()
	err = job(jctx, token)
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer rcancel()
	_ = el.Resign(rctx)
	if jctx.Err() != nil {
		return nil
	}
	return err
}

// Execer is satisfied by pgx.Tx.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Fence records token for job inside tx and returns ErrFenced when a
// higher token was recorded before: the caller must roll back. Call it in
// every transaction the singleton commits.
func Fence(ctx context.Context, tx Execer, job string, token int64) error {
	tag, err := tx.Exec(ctx, `INSERT INTO fencing_tokens (job, token) VALUES ($1, $2)
		ON CONFLICT (job) DO UPDATE SET token = EXCLUDED.token, updated_at = now()
		WHERE fencing_tokens.token <= EXCLUDED.token`, job, token)
	if err != nil {
		return fmt.Errorf("fence %s: %w", job, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%s with token %d: %w", job, token, ErrFenced)
	}
	return nil
}
