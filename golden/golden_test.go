package golden_test

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/svc2rules/svc2rules/internal/canon"
	"github.com/svc2rules/svc2rules/internal/cli"
)

// A scenario is a directory holding input.yaml, args (compile flags, one per
// line) and the outputs kube-proxy produced for them (see README.md). Each
// expected file present is compared with svc2rules' output for the same
// input and settings; a missing file means that backend is not checked there.

type scenario struct {
	name string
	dir  string
	args []string
}

func scenarios(t *testing.T) []scenario {
	t.Helper()
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var out []scenario
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if _, err := os.Stat(filepath.Join(e.Name(), "input.yaml")); err != nil {
			continue
		}
		args, err := ReadArgs(filepath.Join(e.Name(), "args"))
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		out = append(out, scenario{name: e.Name(), dir: e.Name(), args: args})
	}
	if len(out) == 0 {
		t.Fatal("no golden scenarios found")
	}
	return out
}

// ReadArgs reads an args file: one flag per line, blank lines and # comments ignored.
func ReadArgs(path string) ([]string, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var args []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		args = append(args, l)
	}
	return args, sc.Err()
}

// compile runs svc2rules on the scenario with extra flags appended.
func compile(t *testing.T, sc scenario, extra ...string) (string, error) {
	t.Helper()
	o := cli.DefaultCompileOptions()
	fs := pflag.NewFlagSet("compile", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse(append(append([]string(nil), sc.args...), extra...)); err != nil {
		t.Fatalf("%s/args: %v", sc.name, err)
	}
	o.Files = []string{filepath.Join(sc.dir, "input.yaml")}
	res, err := cli.Compile(o, nil)
	if err != nil {
		return "", err
	}
	return res.Output, nil
}

func readExpected(t *testing.T, path string) (string, bool) {
	t.Helper()
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(data), true
}

func TestGoldenIPTables(t *testing.T) {
	for _, sc := range scenarios(t) {
		for _, view := range []struct{ file, flag string }{
			{"iptables.txt", "--iptables-view=save"},
			{"iptables-restore.txt", "--iptables-view=restore"},
		} {
			want, ok := readExpected(t, filepath.Join(sc.dir, view.file))
			if !ok {
				continue
			}
			t.Run(sc.name+"/"+view.file, func(t *testing.T) {
				got, err := compile(t, sc, "--backend=iptables", view.flag)
				if err != nil {
					t.Fatalf("compile: %v", err)
				}
				equal, diff, err := canon.IPTables(want, got)
				if err != nil {
					t.Fatal(err)
				}
				if !equal {
					t.Errorf("svc2rules differs from kube-proxy (-kube-proxy +svc2rules):\n%s", diff)
				}
			})
		}
	}
}

// TestGoldenIPVS compiles each of the four ipvs.txt sections with
// --ipvs-section and compares it with kube-proxy's (canon.IPVSSection).
// TestGoldenNFT compares nft.txt (knftables' Fake dump of kube-proxy's table)
// with both nft views: the dump and, by the state it creates, the transaction.
func TestGoldenNFT(t *testing.T) {
	for _, sc := range scenarios(t) {
		want, ok := readExpected(t, filepath.Join(sc.dir, "nft.txt"))
		if !ok {
			continue
		}
		for _, view := range []string{"dump", "transaction"} {
			t.Run(sc.name+"/nft.txt/"+view, func(t *testing.T) {
				got, err := compile(t, sc, "--backend=nft", "--nft-view="+view)
				if err != nil {
					t.Fatalf("compile: %v", err)
				}
				equal, diff, err := canon.NFT(want, got)
				if err != nil {
					t.Fatal(err)
				}
				if !equal {
					t.Errorf("svc2rules differs from kube-proxy (-kube-proxy +svc2rules):\n%s", diff)
				}
			})
		}
	}
}

func TestGoldenIPVS(t *testing.T) {
	for _, sc := range scenarios(t) {
		want, ok := readExpected(t, filepath.Join(sc.dir, "ipvs.txt"))
		if !ok {
			continue
		}
		sections, err := canon.SplitIPVSSections(want)
		if err != nil {
			t.Fatalf("%s/ipvs.txt: %v", sc.name, err)
		}
		for _, section := range canon.IPVSSections {
			t.Run(sc.name+"/ipvs.txt/"+section, func(t *testing.T) {
				w, ok := sections[section]
				if !ok {
					t.Fatalf("ipvs.txt has no %q section", canon.IPVSSectionHeaders[section])
				}
				got, err := compile(t, sc, "--backend=ipvs", "--ipvs-section="+section)
				if err != nil {
					t.Fatalf("compile: %v", err)
				}
				equal, diff, err := canon.IPVSSection(section, w, got)
				if err != nil {
					t.Fatal(err)
				}
				if !equal {
					t.Errorf("svc2rules differs from kube-proxy (-kube-proxy +svc2rules):\n%s", diff)
				}
			})
		}
	}
}

// TestGoldenDeterministic checks that compiling twice gives the same bytes.
func TestGoldenDeterministic(t *testing.T) {
	for _, sc := range scenarios(t) {
		a, errA := compile(t, sc, "--backend=iptables")
		b, errB := compile(t, sc, "--backend=iptables")
		if (errA == nil) != (errB == nil) || a != b {
			t.Errorf("%s: two compiles differ", sc.name)
		}
	}
}
