package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/svc2rules/svc2rules/internal/cli"
)

const goldenDir = "../golden"

// goldenOpts reads golden/<scenario>/args (one --flag=value a line, # comments)
// into compile options for the scenario's input.yaml.
// Further args files (e.g. userspace.args) are appended when they exist.
func goldenOpts(t *testing.T, dir string, more ...string) cli.CompileOptions {
	t.Helper()
	o := cli.DefaultCompileOptions()
	fs := pflag.NewFlagSet(dir, pflag.ContinueOnError)
	o.AddFlags(fs)
	var args []string
	for i, name := range append([]string{"args"}, more...) {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			if i > 0 && os.IsNotExist(err) {
				continue
			}
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			args = append(args, line)
		}
	}
	if err := fs.Parse(args); err != nil {
		t.Fatalf("%s/args: %v", dir, err)
	}
	// Paths in args are relative to the scenario directory.
	if o.ConfigFile != "" && !filepath.IsAbs(o.ConfigFile) {
		o.ConfigFile = filepath.Join(dir, o.ConfigFile)
	}
	if err := o.ApplyConfigFile(fs); err != nil {
		t.Fatalf("%s/args: %v", dir, err)
	}
	o.Files = []string{filepath.Join(dir, "input.yaml")}
	return o
}

func goldenScenarios(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir(goldenDir)
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(goldenDir, e.Name())
		if _, err := os.Stat(filepath.Join(dir, "args")); err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, "input.yaml")); err != nil {
			continue
		}
		dirs = append(dirs, dir)
	}
	if len(dirs) == 0 {
		t.Fatalf("no golden scenarios under %s", goldenDir)
	}
	return dirs
}

func restoreTool(o cli.CompileOptions) string {
	if fam, _ := o.Family(); fam == "IPv6" {
		return "ip6tables-restore"
	}
	return "iptables-restore"
}

// testGoldenLoad checks that every golden scenario's svc2rules output is
// accepted by the kernel: the dry runs (iptables-restore --test of the save
// and restore views, nft -c -f) and, since a dry run does not catch
// everything (iptables-restore --test does not look up nfacct objects), a
// real load into a fresh namespace. ipvs: ipset restore, then the iptables
// part (see loadIPVSRules).
func testGoldenLoad(t *testing.T) {
	scenarios := goldenScenarios(t)
	t.Run("iptables", func(t *testing.T) {
		for _, dir := range scenarios {
			t.Run(filepath.Base(dir), func(t *testing.T) {
				t.Parallel()
				o := goldenOpts(t, dir)
				tool := restoreTool(o)
				ns := newNS(t, "golden")
				nfacct := nfacctReady(t, ns)
				if !nfacct {
					o.NFAcct = false
				}
				o.IPTablesView = "save"
				save := compileOrSkip(t, o)
				o.IPTablesView = "restore"
				restore := compileOrSkip(t, o)
				mustInNS(t, ns, save, tool, "--test")
				mustInNS(t, ns, restore, tool, "--test", "--noflush")
				mustInNS(t, ns, save, tool)
			})
		}
	})
	t.Run("nft", func(t *testing.T) {
		for _, dir := range scenarios {
			t.Run(filepath.Base(dir), func(t *testing.T) {
				t.Parallel()
				o := goldenOpts(t, dir)
				o.Backend = "nft"
				// Both views: the dump (the table as an nft -f script) and
				// kube-proxy's first-sync transaction; each checked with
				// nft -c and then loaded into its own fresh namespace.
				for _, view := range []string{"dump", "transaction"} {
					o.NFTView = view
					rules := compileOrSkip(t, o)
					ns := newNS(t, "golden")
					mustInNS(t, ns, rules, "nft", "-c", "-f", "-")
					mustInNS(t, ns, rules, "nft", "-f", "-")
				}
			})
		}
	})
	t.Run("userspace", func(t *testing.T) {
		// kube-proxy v1.25's userspace mode: its iptables rules only (the
		// proxy process itself is not svc2rules' output).
		for _, dir := range scenarios {
			t.Run(filepath.Base(dir), func(t *testing.T) {
				t.Parallel()
				o := goldenOpts(t, dir, "userspace.args")
				o.Backend = "userspace"
				rules := compileOrSkip(t, o)
				ns := newNS(t, "golden")
				mustInNS(t, ns, rules, restoreTool(o), "--test")
				mustInNS(t, ns, rules, restoreTool(o))
			})
		}
	})
	t.Run("ipvs", func(t *testing.T) {
		for _, dir := range scenarios {
			t.Run(filepath.Base(dir), func(t *testing.T) {
				t.Parallel()
				o := goldenOpts(t, dir)
				o.Backend = "ipvs"
				ns := newNS(t, "golden")
				if !nfacctReady(t, ns) {
					o.NFAcct = false
				}
				o.IPVSSection = "ipset"
				sets := compileOrSkip(t, o)
				o.IPVSSection = "iptables"
				rules := compileOrSkip(t, o)
				mustInNS(t, ns, sets, "ipset", "restore")
				loadIPVSRules(t, ns, rules, restoreTool(o), "--test")
				loadIPVSRules(t, ns, rules, restoreTool(o))
			})
		}
	})
}
