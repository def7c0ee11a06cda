package httpserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/example/sagasuite/platform/observe"
)

// DefaultBodyLimit is the largest request body accepted unless configured.
const DefaultBodyLimit = 64 << 10

// Check reports whether a dependency is usable; /readyz runs them all.
type Check func(ctx context.Context) error

// Readiness is what /readyz checks. It answers whether this instance can
// serve its API, so that what routes traffic (a load balancer, the
// sidecar's registration) moves it only when another instance would do
// better. Required checks are what the API cannot do without (its
// database): /readyz fails while one fails. Startup checks (Kafka, etcd,
// a consumer's partitions, a dependency found) must pass once before the
// instance is ready; after that a failing one is reported as degraded and
// readiness holds, because the API goes on without it (the outbox keeps
// events while Kafka is away, discovery keeps the instances it knew), and
// every replica shares the same broker: taking them out of rotation
// would turn a blip into an outage.
type Readiness struct {
	Required map[string]Check
	Startup  map[string]Check
}

// Config holds the server's settings. The zero value is valid: no
// readiness checks, no /metrics.
type Config struct {
	// BodyLimit caps request bodies in bytes; 0 means DefaultBodyLimit.
	BodyLimit int64
	// Ready is what /readyz checks, by dependency name, e.g. "postgres".
	Ready Readiness
	// Metrics serves GET /metrics; nil answers 404.
	Metrics http.Handler
	// ShutdownTimeout bounds the graceful drain in Run; 0 means 10 s.
	ShutdownTimeout time.Duration
	// TLS, when set, makes Run and Serve serve HTTPS (platform/tlsfiles).
	TLS *tls.Config
	// ServerName is the server.address of every span and metric point,
	// e.g. the service's name. Without it otelhttp takes the request's
	// Host header, and any client could mint new metric series.
	ServerName string
}

// Server is an echo router wrapped in OTel instrumentation.
type Server struct {
	// Echo is where the service registers its routes.
	Echo    *echo.Echo
	handler http.Handler
	cfg     Config
	log     *slog.Logger

	draining     context.Context // cancelled when shutdown begins
	stopDraining context.CancelFunc
}

// New builds a server with the platform endpoints already routed. Each
// request is traced and measured, and each failure logged, through tel.
func New(tel observe.Bundle, cfg Config) (*Server, error) {
	if err := tel.For("http server " + cfg.ServerName); err != nil {
		return nil, err
	}
	if cfg.BodyLimit <= 0 {
		cfg.BodyLimit = DefaultBodyLimit
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	if cfg.ServerName == "" {
		cfg.ServerName = "server"
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = errorHandler(tel.Logger)
	e.Pre(bodyLimit(cfg.BodyLimit))
	e.Use(middleware.Recover(), nameSpanByRoute)

	e.GET("/healthz", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	})
	e.GET("/readyz", readyHandler(cfg.Ready, tel.Logger))
	if cfg.Metrics != nil {
		e.GET("/metrics", echo.WrapHandler(cfg.Metrics))
	}

	opts := []otelhttp.Option{
		otelhttp.WithServerName(cfg.ServerName),
		otelhttp.WithFilter(func(r *http.Request) bool {
			switch r.URL.Path {
			case "/healthz", "/readyz", "/metrics":
				return false // probes and scrapes would drown the traces
			}
			return true
		}),
		otelhttp.WithTracerProvider(tel.TracerProvider),
		otelhttp.WithMeterProvider(tel.MeterProvider),
		otelhttp.WithPropagators(tel.Propagator),
	}
	draining, stop := context.WithCancel(context.Background())
	return &Server{Echo: e, handler: otelhttp.NewHandler(e, "http.server", opts...), cfg: cfg, log: tel.Logger,
		draining: draining, stopDraining: stop}, nil
}

// Draining is cancelled when the server starts shutting down. Handlers
// that hold a request open on purpose (long polls) end their wait on it
// and answer, so that a drain is not held up by a client's wait.
func (s *Server) Draining() context.Context { return s.draining }

// ServeHTTP serves one request through the instrumentation and the router.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Run serves on addr until ctx is done, then stops accepting, lets
// requests in flight finish (bounded by Config.ShutdownTimeout) and returns.
func (s *Server) Run(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve is Run on a listener the caller opened (tests use port 0).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	if s.cfg.TLS != nil {
		ln = tls.NewListener(ln, s.cfg.TLS)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
	}
	s.stopDraining()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shut down http: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve http: %w", err)
	}
	return nil
}

// nameSpanByRoute renames the otelhttp server span after routing, when the
// route template is known ("GET /orders/:id"), and labels its metrics.
func nameSpanByRoute(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		route := c.Path()
		if route != "" {
			ctx := c.Request().Context()
			span := trace.SpanFromContext(ctx)
			span.SetName(c.Request().Method + " " + route)
			span.SetAttributes(semconv.HTTPRoute(route))
			if l, ok := otelhttp.LabelerFromContext(ctx); ok {
				l.Add(semconv.HTTPRoute(route))
			}
		}
		return next(c)
	}
}

func bodyLimit(limit int64) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			if r.ContentLength > limit {
				return tooLargeError(limit)
			}
			r.Body = http.MaxBytesReader(c.Response(), r.Body, limit)
			return next(c)
		}
	}
}

// The answer names a failing dependency, never its error: /readyz is on
// the public port, and a driver's error carries users, database names and
// addresses. The error goes to the log.
func readyHandler(r Readiness, log *slog.Logger) echo.HandlerFunc {
	var mu sync.Mutex
	started := map[string]bool{} // startup checks that have passed once
	run := func(ctx context.Context, check Check) error {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		return check(ctx)
	}
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		for _, name := range slices.Sorted(maps.Keys(r.Required)) {
			if err := run(ctx, r.Required[name]); err != nil {
				log.WarnContext(ctx, "not ready", "dependency", name, "error", err)
				return NewError(http.StatusServiceUnavailable, "not_ready", name+" is not available")
			}
		}
		degraded := map[string]string{}
		for _, name := range slices.Sorted(maps.Keys(r.Startup)) {
			err := run(ctx, r.Startup[name])
			mu.Lock()
			if err == nil {
				started[name] = true
			}
			ok := started[name]
			mu.Unlock()
			switch {
			case err == nil:
			case !ok:
				log.WarnContext(ctx, "not ready", "dependency", name, "error", err)
				return NewError(http.StatusServiceUnavailable, "not_ready", name+" is not available yet")
			default:
				log.WarnContext(ctx, "degraded", "dependency", name, "error", err)
				degraded[name] = "unavailable"
			}
		}
		if len(degraded) > 0 {
			return c.JSON(http.StatusOK, map[string]any{"status": "degraded", "degraded": degraded})
		}
		return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
	}
}

func errorHandler(logger *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		e := asError(err)
		var he *echo.HTTPError
		switch {
		case e != nil:
		case errors.As(err, &he):
			e = fromEchoError(he)
		default:
			logger.ErrorContext(c.Request().Context(), "request failed",
				"method", c.Request().Method, "route", c.Path(), "error", err)
			e = NewError(http.StatusInternalServerError, "internal", "internal server error")
		}
		if e.Status >= 500 {
			trace.SpanFromContext(c.Request().Context()).RecordError(err)
		}
		body := errorBody{Error: errorDetail{Code: e.Code, Message: e.Message, Fields: e.Fields}}
		if c.Request().Method == http.MethodHead {
			err = c.NoContent(e.Status)
		} else {
			err = c.JSON(e.Status, body)
		}
		if err != nil {
			logger.WarnContext(c.Request().Context(), "write error response", "error", err)
		}
	}
}

func fromEchoError(he *echo.HTTPError) *Error {
	switch he.Code {
	case http.StatusNotFound:
		return NewError(he.Code, "not_found", "no such route")
	case http.StatusMethodNotAllowed:
		return NewError(he.Code, "method_not_allowed", "method not allowed on this route")
	case http.StatusRequestEntityTooLarge:
		return NewError(he.Code, "payload_too_large", "the body is too large")
	}
	msg := http.StatusText(he.Code)
	if s, ok := he.Message.(string); ok {
		msg = s
	}
	code := "internal"
	if he.Code < 500 {
		code = "bad_request"
	}
	return NewError(he.Code, code, msg)
}
