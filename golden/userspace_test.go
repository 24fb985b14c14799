package golden_test

import (
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	utilnet "k8s.io/apimachinery/pkg/util/net"

	"github.com/svc2rules/svc2rules/internal/canon"
)

// TestGoldenUserspace compares svc2rules' userspace backend with the rules
// the real kube-proxy v1.25.16 userspace proxier programmed
// (userspace.txt, written by conformance/userspace; userspace.PROVENANCE
// says how). userspace.args holds the backend's own flags, appended to args.
// Proxy ports are unified (canon.Userspace); both sides must take them from
// --proxy-port-range when the scenario sets one.
func TestGoldenUserspace(t *testing.T) {
	n := 0
	for _, sc := range scenarios(t) {
		want, ok := readExpected(t, filepath.Join(sc.dir, "userspace.txt"))
		if !ok {
			continue
		}
		n++
		extra, err := ReadArgs(filepath.Join(sc.dir, "userspace.args"))
		if err != nil {
			t.Fatalf("%s: %v", sc.name, err)
		}
		t.Run(sc.name+"/userspace.txt", func(t *testing.T) {
			got, err := compile(t, sc, append([]string{"--backend=userspace"}, extra...)...)
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			equal, diff, err := canon.Userspace(want, got)
			if err != nil {
				t.Fatal(err)
			}
			if !equal {
				t.Errorf("svc2rules differs from kube-proxy v1.25.16 (-kube-proxy +svc2rules; proxy ports unified):\n%s", diff)
			}
			for _, a := range extra {
				v, ok := strings.CutPrefix(a, "--proxy-port-range=")
				if !ok {
					continue
				}
				pr, err := utilnet.ParsePortRange(v)
				if err != nil {
					t.Fatal(err)
				}
				for side, text := range map[string]string{"kube-proxy": want, "svc2rules": got} {
					ports, err := canon.UserspaceProxyPorts(text)
					if err != nil {
						t.Fatalf("%s: %v", side, err)
					}
					for spn, p := range ports {
						if !pr.Contains(p) {
							t.Errorf("%s: %s has proxy port %d outside --proxy-port-range %s", side, spn, p, v)
						}
					}
				}
			}
			table, err := compile(t, sc, append([]string{"--backend=userspace", "--userspace-section=table"}, extra...)...)
			if err != nil || table == "" {
				t.Errorf("--userspace-section=table: %v", err)
			}
		})
	}
	if n == 0 {
		t.Fatal("no scenario has a userspace.txt")
	}
}

// TestGoldenUserspaceState compares the backends and session affinity that
// svc2rules' --userspace-section=table states for each service port with
// what the real kube-proxy v1.25.16 LoadBalancerRR held after the same
// input (userspace-state.txt, written by conformance/userspace).
func TestGoldenUserspaceState(t *testing.T) {
	n := 0
	for _, sc := range scenarios(t) {
		want, ok := readExpected(t, filepath.Join(sc.dir, "userspace-state.txt"))
		if !ok {
			continue
		}
		n++
		extra, err := ReadArgs(filepath.Join(sc.dir, "userspace.args"))
		if err != nil {
			t.Fatalf("%s: %v", sc.name, err)
		}
		t.Run(sc.name+"/userspace-state.txt", func(t *testing.T) {
			table, err := compile(t, sc, append([]string{"--backend=userspace", "--userspace-section=table"}, extra...)...)
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			got := stateFromTable(table)
			if got != want {
				t.Errorf("svc2rules' table differs from kube-proxy v1.25.16's load balancer:\n--- kube-proxy\n%s--- svc2rules\n%s", want, got)
			}
		})
	}
	if n == 0 {
		t.Fatal("no scenario has a userspace-state.txt")
	}
}

var ttlRE = regexp.MustCompile(`sliding TTL (\d+)s`)

// stateFromTable reads the table's per-service-port blocks into
// userspace-state.txt's form: "SPN backends=<sorted,...> affinity=None|ClientIP [ttl=N]".
func stateFromTable(table string) string {
	var lines []string
	spn, backends, affinity, proxied := "", "", "", false
	flush := func() {
		if spn != "" && proxied {
			lines = append(lines, spn+" backends="+backends+" affinity="+affinity)
		}
		spn, backends, affinity, proxied = "", "", "", false
	}
	for _, l := range strings.Split(table, "\n") {
		switch {
		case l == "" || strings.HasPrefix(l, "#"):
			flush()
		case !strings.HasPrefix(l, " "):
			flush()
			spn = l
		default:
			k, v, _ := strings.Cut(strings.TrimSpace(l), ":")
			v = strings.TrimSpace(v)
			switch k {
			case "proxy port":
				proxied = !strings.HasPrefix(v, "none")
			case "backends":
				if !strings.HasPrefix(v, "none") {
					list, _, _ := strings.Cut(v, " (")
					f := strings.Fields(list)
					sort.Strings(f)
					backends = strings.Join(f, ",")
				}
			case "affinity":
				if strings.HasPrefix(v, "ClientIP") {
					affinity = "ClientIP"
					if m := ttlRE.FindStringSubmatch(v); m != nil {
						affinity += " ttl=" + m[1]
					}
				} else {
					affinity = "None"
				}
			}
		}
	}
	flush()
	sort.Strings(lines)
	return strings.Join(lines, "\n") + "\n"
}
