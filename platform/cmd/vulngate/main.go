// Command vulngate fails make lint on a known vulnerability the suite's
// code reaches. It reads govulncheck's JSON (-format json) on stdin, takes
// the findings whose trace reaches a vulnerable function (not merely an
// imported package or a required module), and exits non-zero for each
// one the accepted file does not list. A listed one is printed with the
// reason written beside it, so an accepted risk stays visible; a listed
// one no longer found is reported, so the list does not rot.
//
//	govulncheck -db file://… -format json ./... | vulngate tools/vulncheck-accepted.txt
//
// The accepted file has one vulnerability per line, "GO-YYYY-NNNN reason";
// # starts a comment.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: govulncheck -format json … | vulngate ACCEPTED-FILE")
		os.Exit(2)
	}
	if err := run(os.Stdin, os.Args[1], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "vulngate:", err)
		os.Exit(1)
	}
}

// message is the part of govulncheck's JSON protocol (v1) read here.
type message struct {
	Config *struct {
		DB string `json:"db"`
	} `json:"config"`
	OSV *struct {
		ID      string `json:"id"`
		Summary string `json:"summary"`
	} `json:"osv"`
	Finding *struct {
		OSV          string `json:"osv"`
		FixedVersion string `json:"fixed_version"`
		Trace        []struct {
			Module   string `json:"module"`
			Version  string `json:"version"`
			Function string `json:"function"`
		} `json:"trace"`
	} `json:"finding"`
}

func run(in io.Reader, acceptedFile string, out io.Writer) error {
	accepted, err := readAccepted(acceptedFile)
	if err != nil {
		return err
	}
	summaries := map[string]string{}
	called := map[string]string{} // id → "module@version (fixed in …)"
	sawConfig := false
	dec := json.NewDecoder(in)
	for {
		var m message
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return fmt.Errorf("read govulncheck's output: %w", err)
		}
		switch {
		case m.Config != nil:
			sawConfig = true
		case m.OSV != nil:
			summaries[m.OSV.ID] = m.OSV.Summary
		case m.Finding != nil && len(m.Finding.Trace) > 0 && m.Finding.Trace[0].Function != "":
			t := m.Finding.Trace[0]
			fixed := m.Finding.FixedVersion
			if fixed == "" {
				fixed = "no fix yet"
			}
			called[m.Finding.OSV] = fmt.Sprintf("%s@%s (fixed in %s)", t.Module, t.Version, fixed)
		}
	}
	if !sawConfig {
		return errors.New("no govulncheck output on stdin (did it run?)")
	}
	var failed []string
	for _, id := range slices.Sorted(maps.Keys(called)) {
		if reason, ok := accepted[id]; ok {
			fmt.Fprintf(out, "accepted %s %s: %s\n    because: %s\n", id, called[id], summaries[id], reason)
			continue
		}
		failed = append(failed, id)
		fmt.Fprintf(out, "VULNERABLE %s %s: %s\n", id, called[id], summaries[id])
	}
	for _, id := range slices.Sorted(maps.Keys(accepted)) {
		if _, ok := called[id]; !ok {
			fmt.Fprintf(out, "stale: %s is accepted in %s but no longer found; remove it\n", id, acceptedFile)
		}
	}
	fmt.Fprintf(out, "vulngate: %d reachable vulnerabilities, %d accepted\n", len(called), len(called)-len(failed))
	if len(failed) > 0 {
		return fmt.Errorf("%d reachable vulnerabilities not accepted: %s (fix them, or list them with a reason in %s)",
			len(failed), strings.Join(failed, ", "), acceptedFile)
	}
	return nil
}

func readAccepted(path string) (map[string]string, error) {
	f, err := os.Open(path) // #nosec G304 G703 -- the file make lint names
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, reason, _ := strings.Cut(line, " ")
		if !strings.HasPrefix(id, "GO-") || strings.TrimSpace(reason) == "" {
			return nil, fmt.Errorf("%s:%d: want \"GO-YYYY-NNNN reason\"", path, n)
		}
		out[id] = strings.TrimSpace(reason)
	}
	return out, sc.Err()
}
