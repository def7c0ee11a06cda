// Command devrun runs the suite's processes for `make dev`: it starts the
// groups of a Procfile in order and, on Ctrl-C (SIGINT or SIGTERM), stops
// them in reverse order, one group at a time, each within a deadline
// (SIGTERM, then SIGKILL). So sidecars deregister before their services
// stop, services stop before etcd and the broker they need for a clean
// exit, and no process outlives the runner. A process that dies (kill -9
// a replica to watch failover) leaves the others running.
//
// Procfile: one process a line, "name: command" (run by bash), groups
// separated by blank lines, # comments (platform/procfile). It reports
// when the /readyz of every process with an HTTP_ADDR answers 200.
//
//	devrun dev.procfile
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/example/sagasuite/platform/procfile"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "devrun:", err)
		os.Exit(1)
	}
}

type proc struct {
	name, command string
	cmd           *exec.Cmd
	done          chan struct{}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("devrun", flag.ContinueOnError)
	grace := fs.Duration("grace", 8*time.Second, "how long a group may take to stop before it is killed")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: devrun [-grace 8s] PROCFILE")
	}
	groups, readyURLs, err := parse(fs.Arg(0))
	if err != nil {
		return err
	}
	out := &lockedWriter{w: stdout}
	env := telemetryEnv(ctx, os.LookupEnv, answers, out)
	if rt := procfile.RuntimeEnv(os.LookupEnv, runtime.NumCPU()); len(rt) > 0 {
		fmt.Fprintf(out, "devrun: %s for every process (half the cores: they share them)\n", strings.Join(rt, " "))
		env = append(env, rt...)
	}
	width := 0
	for _, g := range groups {
		for _, p := range g {
			width = max(width, len(p.name))
		}
	}
	started := time.Now()
	defer func() { stopAll(groups, *grace, out) }()
	for i, g := range groups {
		for j, p := range g {
			if err := start(p, env, fmt.Sprintf("\x1b[%dm%-*s |\x1b[0m ", 31+(i*3+j)%6, width, p.name), out); err != nil {
				return err
			}
		}
	}
	if len(readyURLs) > 0 {
		go reportReady(ctx, readyURLs, started, out)
	}
	<-ctx.Done()
	fmt.Fprintln(out, "devrun: stopping, newest group first")
	return nil
}

func parse(path string) ([][]*proc, []string, error) {
	groups, err := procfile.Read(path)
	if err != nil {
		return nil, nil, err
	}
	out := make([][]*proc, len(groups))
	var ready []string
	for i, g := range groups {
		for _, p := range g {
			out[i] = append(out[i], &proc{name: p.Name, command: p.Command})
			if u := p.ReadyURL(); u != "" {
				ready = append(ready, u)
			}
		}
	}
	return out, ready, nil
}

// start runs p in its own process group with devrun's environment and
// env, its output prefixed line by line.
func start(p *proc, env []string, prefix string, out io.Writer) error {
	p.cmd = exec.Command("bash", "-c", p.command) // #nosec G204 -- runs the commands of the developer's own procfile, which is its purpose
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	r, w := io.Pipe()
	p.cmd.Stdout, p.cmd.Stderr = w, w
	if err := p.cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	p.done = make(chan struct{})
	go func() {
		s := bufio.NewScanner(r)
		s.Buffer(make([]byte, 64<<10), 1<<20)
		for s.Scan() {
			fmt.Fprintf(out, "%s%s\n", prefix, s.Text())
		}
	}()
	go func() {
		err := p.cmd.Wait()
		_ = w.Close()
		fmt.Fprintf(out, "%s%s exited: %v\n", prefix, p.name, exitText(err))
		close(p.done)
	}()
	return nil
}

func exitText(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

// stopAll stops the groups newest first; each group gets grace to exit
// after SIGTERM, then its survivors are killed.
func stopAll(groups [][]*proc, grace time.Duration, out io.Writer) {
	for i := len(groups) - 1; i >= 0; i-- {
		var wg sync.WaitGroup
		for _, p := range groups[i] {
			if p.cmd == nil || p.cmd.Process == nil {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				began := time.Now()
				_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
				select {
				case <-p.done:
					fmt.Fprintf(out, "devrun: %s stopped in %v\n", p.name, time.Since(began).Round(time.Millisecond))
				case <-time.After(grace):
					_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
					<-p.done
					fmt.Fprintf(out, "devrun: %s did not stop within %v: killed\n", p.name, grace)
				}
			}()
		}
		wg.Wait()
	}
}

func reportReady(ctx context.Context, urls []string, started time.Time, out io.Writer) {
	client := &http.Client{Timeout: time.Second}
	for {
		all := true
		for _, u := range urls {
			resp, err := client.Get(u)
			if err != nil {
				all = false
				break
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				all = false
				break
			}
		}
		if all {
			fmt.Fprintf(out, "devrun: the suite is ready (%d processes answer /readyz) after %v\n", len(urls), time.Since(started).Round(100*time.Millisecond))
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// lockedWriter keeps lines of different processes from interleaving.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
