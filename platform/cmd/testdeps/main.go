// Command testdeps runs a command (make test's go test) against real
// dependencies in Docker: when a Docker engine answers and
// TEST_DATABASE_URL is not set, it starts PostgreSQL and Kafka containers
// with testcontainers, runs the command with TEST_DATABASE_URL and
// TEST_KAFKA_BROKERS pointing at them, and removes the containers when the
// command ends. Otherwise it runs the command as it is, and the test kits
// (postgrestest, kafkatest) use the local PostgreSQL and an in-process
// broker.
//
//	testdeps -- go test ./...
//
// It lives here, among the dev commands, so that the test kits the
// services import carry no Docker client: testcontainers is a requirement
// of this module only.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stderr)
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		os.Exit(exit.ExitCode())
	case err != nil:
		fmt.Fprintln(os.Stderr, "testdeps:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, log io.Writer) error {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		return errors.New("usage: testdeps -- COMMAND [ARG...]")
	}
	env := os.Environ()
	switch {
	case os.Getenv("TEST_DATABASE_URL") != "":
		fmt.Fprintln(log, "testdeps: TEST_DATABASE_URL is set: the tests use it")
	case !dockerAnswers(ctx):
		fmt.Fprintln(log, "testdeps: no Docker engine: the tests use the local PostgreSQL and an in-process Kafka broker")
	default:
		extra, stop, err := start(ctx, log)
		defer stop()
		if err != nil {
			return err
		}
		env = append(env, extra...)
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...) // #nosec G204 G702 -- runs the command make test gives it
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	// Ctrl-C reaches the child from the terminal; give it time to stop
	// rather than killing it at once.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	return cmd.Run()
}

// start runs both containers and returns the environment that points the
// test kits at them, and how to remove them.
func start(ctx context.Context, log io.Writer) (env []string, stop func(), err error) {
	var stops []func(context.Context) error
	stop = func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		for _, s := range stops {
			if err := s(ctx); err != nil {
				fmt.Fprintln(log, "testdeps: remove container:", err)
			}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	fmt.Fprintf(log, "testdeps: starting %s and %s\n", PostgresImage, KafkaImage)
	url, s, err := startPostgres(ctx)
	if s != nil {
		stops = append(stops, s)
	}
	if err != nil {
		return nil, stop, err
	}
	brokers, s, err := startKafka(ctx)
	if s != nil {
		stops = append(stops, s)
	}
	if err != nil {
		return nil, stop, err
	}
	return []string{"TEST_DATABASE_URL=" + url, "TEST_KAFKA_BROKERS=" + strings.Join(brokers, ",")}, stop, nil
}
