package ipvs_test

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"github.com/svc2rules/svc2rules/internal/cli"
)

// These tests load the payloads into the kernel: each runs inside a fresh
// network namespace (unshare -n), so the host is never touched. They need
// root, unshare, ipset and iptables-restore / ip6tables-restore, and skip
// otherwise. The kernel this was written on has no IPVS (no xt_ipvs match,
// no dummy interfaces): the KUBE-IPVS-OUT-FILTER "-m ipvs" rules are then
// left out of the load (and reported), ipvsadm and ip are stubbed.

func needNetns(t *testing.T, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces)")
	}
	for _, tool := range append([]string{"unshare"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s", tool)
		}
	}
	if err := exec.Command("unshare", "-n", "true").Run(); err != nil {
		t.Skipf("cannot create a network namespace: %v", err)
	}
}

// goldenScenario is one golden/<name> directory with its compile flags.
type goldenScenario struct {
	name, dir string
	args      []string
}

func goldenScenarios(t *testing.T) []goldenScenario {
	t.Helper()
	dirs, err := filepath.Glob("../../golden/*/input.yaml")
	if err != nil || len(dirs) == 0 {
		t.Skipf("no golden scenarios (%v)", err)
	}
	var out []goldenScenario
	for _, in := range dirs {
		dir := filepath.Dir(in)
		sc := goldenScenario{name: filepath.Base(dir), dir: dir}
		if f, err := os.Open(filepath.Join(dir, "args")); err == nil {
			s := bufio.NewScanner(f)
			for s.Scan() {
				if l := strings.TrimSpace(s.Text()); l != "" && !strings.HasPrefix(l, "#") {
					sc.args = append(sc.args, l)
				}
			}
			f.Close()
		}
		out = append(out, sc)
	}
	return out
}

func compileScenario(t *testing.T, sc goldenScenario, extra ...string) (string, bool) {
	t.Helper()
	o := cli.DefaultCompileOptions()
	fs := pflag.NewFlagSet("compile", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse(append(append([]string{"--backend=ipvs"}, sc.args...), extra...)); err != nil {
		t.Fatalf("%s: %v", sc.name, err)
	}
	o.Files = []string{filepath.Join(sc.dir, "input.yaml")}
	res, err := cli.Compile(o, nil)
	if err != nil {
		return "", false // scenarios meant to fail compiling are covered elsewhere
	}
	return res.Output, true
}

func isIPv6(args []string) bool {
	for _, a := range args {
		if a == "--ip-family=ipv6" {
			return true
		}
	}
	return false
}

// withoutIPVSMatch drops the rules that need the xt_ipvs match.
func withoutIPVSMatch(s string) (string, int) {
	var b strings.Builder
	n := 0
	for _, l := range strings.SplitAfter(s, "\n") {
		if strings.Contains(l, " -m ipvs ") {
			n++
			continue
		}
		b.WriteString(l)
	}
	return b.String(), n
}

// inNetns runs a shell script in a fresh network namespace with files
// written to a temporary directory (available as $D).
func inNetns(t *testing.T, script string, files map[string]string, env ...string) (string, error) {
	t.Helper()
	d := t.TempDir()
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(d, name), []byte(text), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("unshare", "-n", "sh", "-c", script)
	cmd.Env = append(append(os.Environ(), "D="+d), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// TestPayloadsLoad loads every golden scenario's ipset payload and both
// iptables forms (save into an empty namespace, then kube-proxy's restore
// payload with --noflush on top, as its next sync would) into the kernel.
func TestPayloadsLoad(t *testing.T) {
	needNetns(t, "ipset", "iptables-restore", "ip6tables-restore")
	if testing.Short() {
		t.Skip("short")
	}
	skippedIPVS := 0
	for _, sc := range goldenScenarios(t) {
		t.Run(sc.name, func(t *testing.T) {
			sets, ok := compileScenario(t, sc, "--ipvs-section=ipset")
			if !ok {
				t.Skip("does not compile")
			}
			save, _ := compileScenario(t, sc, "--ipvs-section=iptables", "--iptables-view=save")
			restore, _ := compileScenario(t, sc, "--ipvs-section=iptables", "--iptables-view=restore")
			ipt := "iptables"
			if isIPv6(sc.args) {
				ipt = "ip6tables"
			}
			script := `set -e; ipset restore < "$D/sets"; ` + ipt + `-restore < "$D/save"; ` + ipt + `-restore --noflush --counters < "$D/restore"; ipset list -n | wc -l`
			out, err := inNetns(t, script, map[string]string{"sets": sets, "save": save, "restore": restore})
			if err != nil && strings.Contains(save, " -m ipvs ") {
				var n int
				save, n = withoutIPVSMatch(save)
				restore, _ = withoutIPVSMatch(restore)
				skippedIPVS += n
				t.Logf("retrying without %d -m ipvs rule(s) (no xt_ipvs in this kernel?): %s", n, strings.TrimSpace(out))
				out, err = inNetns(t, script, map[string]string{"sets": sets, "save": save, "restore": restore})
			}
			if err != nil {
				t.Fatalf("loading failed: %v\n%s", err, out)
			}
			if strings.TrimSpace(out) != "17" {
				t.Errorf("ipset list -n: %s sets, want 17", strings.TrimSpace(out))
			}
		})
	}
	if skippedIPVS > 0 {
		t.Logf("%d KUBE-IPVS-OUT-FILTER -m ipvs rules could not be loaded by this kernel", skippedIPVS)
	}
}
