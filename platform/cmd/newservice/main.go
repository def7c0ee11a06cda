// Command newservice generates a service from the suite's template
// (`make new-service NAME=shipping PORT=8085 [TOPIC=payments.events]`):
// a consumer of TOPIC with inbox and outbox, one table, an HTTP API, its
// own event contract, and tests. It joins the suite through the two lists
// the rest of the tooling reads: go.work (make build, make test, make
// lint) and dev.procfile (make dev, the e2e suite's readiness).
//
// It must run from the repository's root.
package main

import (
	"bytes"
	"embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/template"

	"github.com/example/sagasuite/platform/procfile"
)

//go:embed all:template
var files embed.FS

func main() {
	if err := run(os.Args[1:], ".", os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "new-service:", err)
		os.Exit(1)
	}
}

// contract is a producer's published event contract a new service can consume.
type contract struct {
	Producer string // the producing service
	Pkg      string // its contract package's name
	First    string // one of its types, for examples
}

var contracts = map[string]contract{
	"orders.events":    {Producer: "orders", Pkg: "orderevents", First: "orders.placed"},
	"inventory.events": {Producer: "inventory", Pkg: "inventoryevents", First: "inventory.reserved"},
	"payments.events":  {Producer: "payments", Pkg: "paymentevents", First: "payments.authorized"},
}

// params fill the templates.
type params struct {
	Name, Port, Topic string
	Producer          string
	ContractPkg       string
	ContractImport    string
	FirstType         string
}

var validName = regexp.MustCompile(`^[a-z][a-z0-9]{1,19}$`)

// marker is the line of dev.procfile above which new services go.
const marker = "# make new-service adds services above this line"

func run(args []string, root string, stdout io.Writer) error {
	fl := flag.NewFlagSet("newservice", flag.ContinueOnError)
	name := fl.String("name", "", "the service's name: lower-case letters and digits, e.g. shipping")
	port := fl.Int("port", 0, "its HTTP port under make dev, e.g. 8085")
	topic := fl.String("topic", "payments.events", "the topic it consumes: orders.events, inventory.events or payments.events")
	if err := fl.Parse(args); err != nil {
		return err
	}
	c, known := contracts[*topic]
	var errs []error
	if !validName.MatchString(*name) {
		errs = append(errs, fmt.Errorf("NAME %q: 2 to 20 lower-case letters and digits, starting with a letter", *name))
	}
	if *port < 1024 || *port > 65535 {
		errs = append(errs, fmt.Errorf("PORT %d: 1024 to 65535", *port))
	}
	if !known {
		errs = append(errs, fmt.Errorf("TOPIC %q: one of orders.events, inventory.events, payments.events", *topic))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	dir := filepath.Join(root, "services", *name)
	if _, err := os.Stat(dir); err == nil {
		return fmt.Errorf("%s exists already", dir)
	}
	procPath := filepath.Join(root, "dev.procfile")
	groups, err := procfile.Read(procPath)
	if err != nil {
		return err
	}
	for _, g := range groups {
		for _, p := range g {
			if p.Name == *name || strings.HasSuffix(p.Env["HTTP_ADDR"], ":"+strconv.Itoa(*port)) {
				return fmt.Errorf("dev.procfile has %s already, on %s: pick another name or port", p.Name, p.Env["HTTP_ADDR"])
			}
		}
	}
	proc, err := os.ReadFile(procPath) // #nosec G304 -- the repository's procfile
	if err != nil {
		return err
	}
	if !bytes.Contains(proc, []byte(marker)) {
		return fmt.Errorf("%s has no line %q to add the service above", procPath, marker)
	}

	p := params{Name: *name, Port: strconv.Itoa(*port), Topic: *topic, Producer: c.Producer, ContractPkg: c.Pkg, FirstType: c.First,
		ContractImport: "github.com/example/sagasuite/services/" + c.Producer + "/" + c.Pkg}
	if err := render(dir, p); err != nil {
		return err
	}
	// go.mod comes from the template: the platform, the producer's
	// contract module and the service's own. Tidy fills in the rest at the
	// versions the platform requires.
	if err := goCmd(dir, "mod", "tidy"); err != nil {
		return err
	}
	line := fmt.Sprintf("%s: GOGC=400 HTTP_ADDR=:%d INSTANCE_ID=%s-1 exec bin/%s\n", *name, *port, *name, *name)
	proc = bytes.Replace(proc, []byte(marker), []byte(line+marker), 1)
	if err := os.WriteFile(procPath, proc, 0o644); err != nil { // #nosec G306 G703 -- a committed source file; the path is root/dev.procfile
		return err
	}
	if err := goCmd(root, "work", "use", "./services/"+*name, "./services/"+*name+"/"+*name+"events"); err != nil {
		return err
	}
	fmt.Fprintf(stdout, `%s: generated in services/%s, consuming %s, on port %d.
Changed: go.work (use ./services/%s and its contract module) and dev.procfile (one line).
Next: make dev (it starts %s), make test (its tests too).
`, *name, *name, *topic, *port, *name, *name)
	return nil
}

// render writes every template file under dir, NAME in paths replaced by
// the service's name and .tmpl dropped.
func render(dir string, p params) error {
	return fs.WalkDir(files, "template", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		text, err := files.ReadFile(path)
		if err != nil {
			return err
		}
		t, err := template.New(path).Option("missingkey=error").Parse(string(text))
		if err != nil {
			return err
		}
		rel := strings.TrimSuffix(strings.ReplaceAll(strings.TrimPrefix(path, "template/"), "NAME", p.Name), ".tmpl")
		out := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(out), 0o750); err != nil {
			return err
		}
		var b bytes.Buffer
		if err := t.Execute(&b, p); err != nil {
			return err
		}
		return os.WriteFile(out, b.Bytes(), 0o644) // #nosec G306 -- generated source, committed like any other
	})
}

func goCmd(dir string, args ...string) error {
	cmd := exec.Command("go", args...) // #nosec G204 -- fixed go subcommands with checked arguments
	cmd.Dir = dir
	if args[0] == "mod" {
		// The module alone, as it would build outside this workspace.
		cmd.Env = append(os.Environ(), "GOWORK=off")
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}
