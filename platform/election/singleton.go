package election

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/example/sagasuite/platform/postgres"
)

// Job is singleton work: it runs only while this instance leads, with the
// term's fencing token to pass to Fence in each write transaction.
type Job func(ctx context.Context, token int64) error

// Singleton is a job run on one instance at a time: the component a
// service adds to its process.
type Singleton struct {
	*Elector
	job Job
}

// Setup creates the fencing table in pool's database (the one the job
// writes to, if it is not there yet) and returns job as a singleton
// elected through cli under cfg.Name.
func Setup(ctx context.Context, cli *clientv3.Client, pool *pgxpool.Pool, cfg Config, job Job) (*Singleton, error) {
	if err := postgres.Migrate(ctx, pool, "election", Migrations()); err != nil {
		return nil, err
	}
	e, err := New(cli, cfg)
	if err != nil {
		return nil, err
	}
	return &Singleton{Elector: e, job: job}, nil
}

// Run campaigns and runs the job while leading, until ctx ends.
func (s *Singleton) Run(ctx context.Context) error { return s.Elector.Run(ctx, s.job) }
