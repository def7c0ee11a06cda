// Command admintoken gives the compose stack its admin token (the bearer
// token of every /admin route, and Grafana's admin password) without a
// value everyone knows: on the first `docker compose up` it writes a
// random token to the file it is given (.sagasuite/admin-token in the
// checkout, git-ignored) and prints it once; later runs keep that file.
// ADMIN_TOKEN, when set, is written instead, so a token you choose
// replaces the generated one. The processes read the file
// (ADMIN_TOKEN_FILE).
//
//	admintoken /run/sagasuite/admin-token
package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	if err := run(os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "admintoken:", err)
		os.Exit(1)
	}
}

func run(args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) != 1 {
		return errors.New("usage: admintoken FILE")
	}
	path := args[0]
	given := strings.TrimSpace(getenv("ADMIN_TOKEN"))
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
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil { // #nosec G301 G703 -- the file compose names; the containers' users read it
		return err
	}
	// Readable by the suite's unprivileged users (and Grafana's) in their
	// containers; the directory is the user's own checkout.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(token+"\n"), 0o644); err != nil { // #nosec G306 G703 -- see above
		return err
	}
	if err := os.Rename(tmp, path); err != nil { // #nosec G703 -- the file compose names
		return err
	}
	if given != "" {
		fmt.Fprintf(stdout, "admin token: ADMIN_TOKEN, written to %s\n", path)
		return nil
	}
	fmt.Fprintf(stdout, "admin token (generated; printed this once, kept in %s): %s\n", path, token)
	return nil
}
