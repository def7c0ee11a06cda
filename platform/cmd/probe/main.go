// Command probe is a container healthcheck: it GETs each URL and exits 0
// when every one answers 2xx within the timeout. The suite's images are
// distroless, and so are several of the observability images the compose
// stack runs, so there is no shell, curl or wget to run a check with;
// compose copies this static binary into those containers through a
// shared volume (compose.yaml, service probe-init, which runs -install on
// every start, so a rebuilt image never leaves a stale probe behind).
//
//	probe http://localhost:8081/readyz
//	probe -timeout 2s http://localhost:3200/ready http://localhost:3200/status
//	probe -ca /run/sagasuite/tls/ca.pem https://localhost:8090/readyz   (trusts only that CA)
//	probe -install /opt/probe     (copies itself to /opt/probe/probe)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/example/sagasuite/platform/tlsfiles"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		os.Exit(1)
	}
}

func run(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("timeout", 3*time.Second, "deadline for all the URLs together")
	printVersion := fs.Bool("version", false, "print the version and exit")
	install := fs.String("install", "", "copy this binary to DIR/probe and exit (compose's probe-init runs this)")
	caFile := fs.String("ca", "", "for https URLs, trust only the CA certificates in this PEM file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *printVersion {
		fmt.Fprintln(stderr, "probe", version)
		return nil
	}
	if *install != "" {
		return installTo(*install, stderr)
	}
	if fs.NArg() == 0 {
		return errors.New("usage: probe [-timeout d] URL [URL ...]")
	}
	tr, err := tlsfiles.Transport(*caFile)
	if err != nil {
		return err
	}
	client := &http.Client{Transport: tr}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	for _, url := range fs.Args() {
		if err := check(ctx, client, url); err != nil {
			return err
		}
	}
	return nil
}

// installTo copies the running binary to dir/probe, replacing what is
// there in one rename, so a container running the old one never sees half
// a file.
func installTo(dir string, stderr io.Writer) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	src, err := os.Open(self) // #nosec G304 -- this very binary
	if err != nil {
		return err
	}
	defer src.Close()
	tmp, err := os.CreateTemp(dir, ".probe-")
	if err != nil {
		return fmt.Errorf("install: %w", err)
	}
	defer os.Remove(tmp.Name()) // gone after the rename; there if it failed
	if _, err := io.Copy(tmp, src); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("install: %w", err)
	}
	if err := tmp.Chmod(0o755); err != nil { // #nosec G302 -- an executable every container user runs
		_ = tmp.Close()
		return fmt.Errorf("install: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, "probe")); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	fmt.Fprintln(stderr, "probe", version, "installed in", dir)
	return nil
}

func check(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %s %s", url, resp.Status, body)
	}
	return nil
}
