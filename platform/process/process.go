// Package process runs one service process: the HTTP server (health,
// readiness, metrics), the token-guarded /admin group (on the same
// listener or on ADMIN_ADDR), and the components the service's run
// function adds one by one, then stops them all within a bound.
//
// It decides nothing about what a service uses. There is no database,
// broker, etcd client, consumer, fault injection or pprof unless the run
// function creates it and adds it, so each service's cmd/<name>/main.go
// lists every pattern it uses, and removing one is deleting its lines
// there (README: "Remove a pattern from one service").
//
// A component (lifecycle.Component) says what it brings in one method: a
// readiness check (/readyz fails while it fails; a degradable one must
// pass once, then only reports degraded: httpserver.Readiness), a job that
// runs beside the server until its context ends, and what to release at
// stop, newest first.
//
// Components bring their own schema: their Setup functions migrate the
// tables they own (outbox.Setup, inbox.Setup, election.Setup), so a
// service cannot forget one.
package process

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/sync/errgroup"

	"github.com/example/sagasuite/platform/config"
	"github.com/example/sagasuite/platform/httpserver"
	"github.com/example/sagasuite/platform/lifecycle"
	"github.com/example/sagasuite/platform/telemetry"
	"github.com/example/sagasuite/platform/tlsfiles"
)

// Config describes one service process.
type Config struct {
	Name       string // service name: telemetry, logs, server.address
	Version    string
	InstanceID string
	LogLevel   slog.Level
	HTTPAddr   string // where Run serves
	AdminToken string // guards /admin routes
	// AdminAddr, when set, serves the /admin routes on a listener of
	// their own, e.g. 127.0.0.1:9101, and not on HTTPAddr.
	AdminAddr string
	// TLSCertFile and TLSKeyFile (PEM), when set, make the public
	// listener (and the admin one) serve HTTPS: psp does, so that only
	// the holder of the certificate the suite's CA issued can answer for
	// it (platform/tlsfiles).
	TLSCertFile, TLSKeyFile string
	// StopTimeout bounds the whole shutdown once ctx ends: draining HTTP,
	// stopping every component and closing what was opened; 0 means 8 s.
	// Past it Run returns an error, so the process exits even when a
	// dependency is already gone and a teardown call would wait on it.
	StopTimeout time.Duration
}

// FromEnv reads the settings of the process itself (README, "Configuration",
// "Environment"): INSTANCE_ID, LOG_LEVEL, HTTP_ADDR, ADMIN_TOKEN, ADMIN_ADDR,
// TLS_CERT_FILE and TLS_KEY_FILE. Problems are collected in env with the
// service's own.
func FromEnv(env *config.Env, name, version, defaultAddr string) Config {
	host, _ := os.Hostname()
	return Config{
		Name:        name,
		Version:     version,
		InstanceID:  env.String("INSTANCE_ID", name+"-"+host),
		LogLevel:    env.LogLevel("LOG_LEVEL"),
		HTTPAddr:    env.Addr("HTTP_ADDR", defaultAddr),
		AdminToken:  env.Secret("ADMIN_TOKEN", "dev-admin-token"),
		AdminAddr:   env.OptionalAddr("ADMIN_ADDR"),
		TLSCertFile: env.String("TLS_CERT_FILE", ""),
		TLSKeyFile:  env.String("TLS_KEY_FILE", ""),
	}
}

// Telemetry is the telemetry.Config of this process.
func (c Config) Telemetry() telemetry.Config {
	return telemetry.Config{ServiceName: c.Name, ServiceVersion: c.Version, InstanceID: c.InstanceID, LogLevel: c.LogLevel}
}

// Process is a service process being assembled, then run.
type Process struct {
	Log *slog.Logger
	// Server is the public HTTP server; the service adds its routes to
	// Server.Echo.
	Server *httpserver.Server
	// Admin is the token-guarded /admin route group: on Server, or on a
	// listener of its own when Config.AdminAddr is set.
	Admin *echo.Group

	cfg         Config
	adminServer *httpserver.Server
	ready       httpserver.Readiness
	runners     []func(context.Context) error
	closers     []func()
}

// New returns a process with its HTTP server built on tel. tel is shut
// down last when the process stops.
func New(tel *telemetry.Telemetry, cfg Config) (*Process, error) {
	if err := tel.For("process " + cfg.Name); err != nil {
		return nil, err
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = 8 * time.Second
	}
	p := &Process{Log: tel.Logger, cfg: cfg,
		ready: httpserver.Readiness{Required: map[string]httpserver.Check{}, Startup: map[string]httpserver.Check{}}}
	p.OnClose(func() {
		// Bounded: an exporter with no collector must not hold up exit.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tel.Shutdown(ctx); err != nil {
			tel.Logger.Warn("telemetry shutdown", "error", err)
		}
	})
	var tlsConfig *tls.Config
	if cfg.TLSCertFile != "" || cfg.TLSKeyFile != "" {
		var err error
		if tlsConfig, err = tlsfiles.Server(cfg.TLSCertFile, cfg.TLSKeyFile); err != nil {
			p.Close()
			return nil, fmt.Errorf("TLS_CERT_FILE, TLS_KEY_FILE: %w", err)
		}
	}
	var err error
	p.Server, err = httpserver.New(tel.Bundle, httpserver.Config{TLS: tlsConfig,
		Metrics: tel.MetricsHandler, Ready: p.ready, ServerName: cfg.Name,
		ShutdownTimeout: cfg.StopTimeout / 2, // the rest is for components and closers
	})
	if err != nil {
		p.Close()
		return nil, err
	}
	p.Admin = p.Server.Echo.Group("/admin", httpserver.RequireToken(cfg.AdminToken))
	if cfg.AdminAddr != "" {
		p.adminServer, err = httpserver.New(tel.Bundle, httpserver.Config{ServerName: cfg.Name + "-admin", TLS: tlsConfig, ShutdownTimeout: cfg.StopTimeout / 2})
		if err != nil {
			p.Close()
			return nil, err
		}
		p.Admin = p.adminServer.Echo.Group("/admin", httpserver.RequireToken(cfg.AdminToken))
	}
	return p, nil
}

// Add registers component c under name: its readiness check, its job
// and what it releases, as its Lifecycle says.
func (p *Process) Add(name string, c lifecycle.Component) {
	parts := c.Lifecycle()
	switch {
	case parts.Ready != nil && parts.Degradable:
		p.Startup(name, parts.Ready)
	case parts.Ready != nil:
		p.Ready(name, parts.Ready)
	}
	if parts.Run != nil {
		p.Go(parts.Run)
	}
	if parts.Close != nil {
		p.OnClose(func() {
			if err := parts.Close(); err != nil {
				p.Log.Warn("close "+name, "error", err)
			}
		})
	}
}

// Ready adds a check to /readyz of what the API cannot be served without:
// the process is ready only while it passes.
func (p *Process) Ready(name string, check httpserver.Check) { p.ready.Required[name] = check }

// Startup adds a check to /readyz that must pass once for the process to
// be ready, and after that is reported as degraded while it fails: a
// dependency the API goes on without (httpserver.Readiness).
func (p *Process) Startup(name string, check httpserver.Check) { p.ready.Startup[name] = check }

// Go adds a job to run beside the server; it must return when its
// context ends.
func (p *Process) Go(run func(context.Context) error) { p.runners = append(p.runners, run) }

// OnClose adds f to what Close releases, newest first.
func (p *Process) OnClose(f func()) { p.closers = append(p.closers, f) }

// Run serves HTTP on Config.HTTPAddr (and AdminAddr) and runs every
// component until ctx ends or one fails, then stops them all, waits for
// them and closes what was added, all within Config.StopTimeout of the
// stop.
func (p *Process) Run(ctx context.Context) error {
	p.Log.Info(p.cfg.Name+" starting", "addr", p.cfg.HTTPAddr, "version", p.cfg.Version, "instance", p.cfg.InstanceID)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return p.Server.Run(gctx, p.cfg.HTTPAddr) })
	if p.adminServer != nil {
		g.Go(func() error { return p.adminServer.Run(gctx, p.cfg.AdminAddr) })
	}
	for _, run := range p.runners {
		g.Go(func() error { return run(gctx) })
	}
	done := make(chan error, 1)
	go func() {
		err := g.Wait()
		p.Close()
		done <- err
	}()
	var err error
	select {
	case err = <-done:
	case <-gctx.Done():
		select {
		case err = <-done:
		case <-time.After(p.cfg.StopTimeout):
			err = fmt.Errorf("stop: still stopping after %v, exiting anyway", p.cfg.StopTimeout)
		}
	}
	if err != nil {
		err = fmt.Errorf("%s: %w", p.cfg.Name, err)
	}
	p.Log.Info(p.cfg.Name+" stopped", "error", err)
	return err
}

// Close releases everything added, newest first. Run calls it; call it
// yourself when wiring fails before Run.
func (p *Process) Close() {
	for i := len(p.closers) - 1; i >= 0; i-- {
		p.closers[i]()
	}
	p.closers = nil
}

// Run is a service process's whole life: telemetry from the environment,
// a Process, assemble adding the service's components to it, then Run
// until ctx ends. What assemble opened is closed if it fails.
func Run(ctx context.Context, cfg Config, getenv func(string) string, stdout io.Writer,
	assemble func(p *Process, tel *telemetry.Telemetry) error) error {
	tel, err := telemetry.Setup(ctx, cfg.Telemetry(), getenv, stdout)
	if err != nil {
		return err
	}
	p, err := New(tel, cfg)
	if err != nil {
		return err
	}
	if err := assemble(p, tel); err != nil {
		p.Close()
		return err
	}
	return p.Run(ctx)
}
