// Command localsecrets gives the compose stack its secrets without a value
// everyone knows. On the first `docker compose up` (the one-shot service
// secrets) it writes, into .sagasuite/ in the checkout (git-ignored):
//
//   - admin-token: a random token (the bearer token of every /admin
//     route, and Grafana's admin password), printed once; ADMIN_TOKEN,
//     when set, is written instead. The processes read it through
//     ADMIN_TOKEN_FILE.
//   - tls/ca.pem, tls/psp.pem, tls/psp-key.pem: a private CA and psp's
//     certificate for the names it is called by, so orders and payments
//     (PSP_CA_FILE) reach psp over TLS and trust nobody else answering
//     for it. The CA's key is never written: nothing can issue more.
//
// Later runs keep what is there.
//
//	localsecrets -token /run/sagasuite/admin-token -tls /run/sagasuite/tls -hosts psp,localhost,127.0.0.1
package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/example/sagasuite/platform/tlsfiles"
)

func main() {
	if err := run(os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "localsecrets:", err)
		os.Exit(1)
	}
}

func run(args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("localsecrets", flag.ContinueOnError)
	tokenFile := fs.String("token", "", "write the admin token to this file (kept if there)")
	tlsDir := fs.String("tls", "", "write a CA and a server certificate for -hosts to this directory (kept if there)")
	hosts := fs.String("hosts", "psp,localhost,127.0.0.1", "the names and addresses the certificate is for")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *tokenFile == "" && *tlsDir == "" {
		return errors.New("usage: localsecrets [-token FILE] [-tls DIR -hosts a,b]")
	}
	if *tokenFile != "" {
		if err := adminToken(*tokenFile, strings.TrimSpace(getenv("ADMIN_TOKEN")), stdout); err != nil {
			return err
		}
	}
	if *tlsDir != "" {
		return certificates(*tlsDir, strings.Split(*hosts, ","), stdout)
	}
	return nil
}

func adminToken(path, given string, stdout io.Writer) error {
	if given == "" {
		if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) != "" { // #nosec G304 G703 -- the file compose names
			fmt.Fprintf(stdout, "admin token: kept in %s (unchanged)\n", path)
			return nil
		}
	}
	token := given
	if token == "" {
		b := make([]byte, 24)
		if _, err := rand.Read(b); err != nil {
			return err
		}
		token = hex.EncodeToString(b)
	}
	if err := write(path, []byte(token+"\n")); err != nil {
		return err
	}
	if given != "" {
		fmt.Fprintf(stdout, "admin token: ADMIN_TOKEN, written to %s\n", path)
		return nil
	}
	fmt.Fprintf(stdout, "admin token (generated; printed this once, kept in %s): %s\n", path, token)
	return nil
}

func certificates(dir string, hosts []string, stdout io.Writer) error {
	ca, cert, key := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "psp.pem"), filepath.Join(dir, "psp-key.pem")
	if exists(ca) && exists(cert) && exists(key) {
		fmt.Fprintf(stdout, "tls: kept in %s (unchanged)\n", dir)
		return nil
	}
	authority, err := tlsfiles.NewCA("sagasuite local CA")
	if err != nil {
		return err
	}
	certPEM, keyPEM, err := authority.Issue(hosts...)
	if err != nil {
		return err
	}
	// The key last: a run cut short leaves a set that is not complete,
	// which the next run replaces whole.
	for _, f := range []struct {
		path string
		b    []byte
	}{{ca, authority.PEM}, {cert, certPEM}, {key, keyPEM}} {
		if err := write(f.path, f.b); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "tls: a new CA and a certificate for %v in %s\n", hosts, dir)
	return nil
}

func exists(path string) bool {
	_, err := os.Stat(path) // #nosec G703 -- the files compose names
	return err == nil
}

// write replaces path in one rename. The files are readable by the
// suite's unprivileged users (and Grafana's) in their containers; the
// directory is the user's own checkout.
func write(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil { // #nosec G301 G703 -- the containers' users read it
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil { // #nosec G306 G703 -- see above
		return err
	}
	return os.Rename(tmp, path) // #nosec G703 -- the file compose names
}
