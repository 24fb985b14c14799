package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/svc2rules/svc2rules/internal/cli"
)

// A Git-style app: nothing allocated, no endpoints.
const gitApp = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: demo}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: registry.example/web:1
        ports: [{name: http, containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: demo}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  ipFamilyPolicy: PreferDualStack
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: web-typo, namespace: demo}
spec:
  selector: {app: wbe}
  ports: [{name: http, port: 80, targetPort: http}]
`

var nodeFlags = []string{"--node-name", "node-1", "--node-ip", "192.168.0.2,2001:db8::2", "--cluster-cidr", "10.244.0.0/16,fd00:10:244::/64"}

func TestMaterializePrintsTheAssumedCluster(t *testing.T) {
	r := runCmd(t, gitApp, append([]string{"materialize", "-f", "-"}, nodeFlags...)...)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{
		"# svc2rules materialize:",
		"# Assumed: allocated 3 ClusterIPs, 1 nodePort, 1 healthCheckNodePort; derived 3 EndpointSlices (6 endpoints) from 3 pods",
		"# svc2rules: allocated clusterIPs[0], clusterIPs[1], ports[0].nodePort, healthCheckNodePort",
		"# svc2rules: derived by the EndpointSlice controller from the pods of Deployment demo/web (3 pods)",
		"# svc2rules: derived by the EndpointSlice controller: no pod of the workloads backs this Service (placeholder slice, no endpoints)",
		"# svc2rules: assumed node (--nodes)",
		"kind: EndpointSlice", "addressType: IPv6", "address: 192.168.0.2",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(r.stdout, "kind: Deployment") {
		t.Error("workloads must not be printed")
	}
	for _, want := range []string{
		"note: <stdin>:15: Service demo/web: allocated clusterIP",
		"note: <stdin>:25: Service demo/web-typo: selector app=wbe matches no pod",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q: %s", want, r.stderr)
		}
	}
	again := runCmd(t, gitApp, append([]string{"materialize", "-f", "-"}, nodeFlags...)...)
	if again.stdout != r.stdout {
		t.Error("two runs differ")
	}
}

// compile on the manifests and compile on what materialize printed give the
// same rules, for every backend and family: the materialized objects are
// exactly the cluster compiled.
func TestCompileOfMaterializedIsCompileOfManifests(t *testing.T) {
	dir := t.TempDir()
	m := runCmd(t, gitApp, append([]string{"materialize", "-f", "-", "-o", filepath.Join(dir, "m.yaml")}, nodeFlags...)...)
	if m.code != 0 {
		t.Fatalf("materialize: exit %d: %s", m.code, m.stderr)
	}
	for _, backend := range []string{"iptables", "nft", "ipvs"} {
		for _, fam := range []string{"ipv4", "ipv6"} {
			args := append([]string{"compile", "-b", backend, "--ip-family", fam}, nodeFlags...)
			a := runCmd(t, gitApp, append(args, "-f", "-")...)
			b := runCmd(t, "", append(args, "-f", filepath.Join(dir, "m.yaml"))...)
			if a.code != 0 || b.code != 0 {
				t.Fatalf("%s/%s: exit %d/%d: %s %s", backend, fam, a.code, b.code, a.stderr, b.stderr)
			}
			header := "# svc2rules: allocated 3 ClusterIPs"
			body := a.stdout
			if backend == "ipvs" {
				// The sh script keeps its "#!" line first; the header follows it.
				shebang, rest, _ := strings.Cut(a.stdout, "\n")
				if !strings.HasPrefix(rest, header) {
					t.Errorf("%s/%s: no allocation header after the #! line: %.100s", backend, fam, a.stdout)
				}
				body = shebang + "\n" + strings.SplitN(rest, "\n", 2)[1]
			} else {
				if !strings.HasPrefix(a.stdout, header) {
					t.Errorf("%s/%s: no allocation header: %.100s", backend, fam, a.stdout)
				}
				body = strings.SplitN(a.stdout, "\n", 2)[1]
			}
			if strings.Count(b.stdout, "# svc2rules") != 0 {
				t.Errorf("%s/%s: header on a complete input", backend, fam)
			}
			if body != b.stdout {
				t.Errorf("%s/%s: compile(manifests) != compile(materialize(manifests))", backend, fam)
			}
		}
	}
}

func TestCompileHeaderOnlyWhenSomethingWasAssumed(t *testing.T) {
	r := runCmd(t, clusterIPService, "compile", "-f", "-")
	if r.code != 0 || strings.HasPrefix(r.stdout, "#") {
		t.Errorf("complete input: exit %d, output starts %.40q", r.code, r.stdout)
	}
	r = runCmd(t, gitApp, "compile", "-f", "-", "--iptables-view", "save")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "# svc2rules: allocated ") || strings.Count(r.stdout, "# svc2rules") != 1 {
		t.Errorf("save: exit %d, output starts %.80q", r.code, r.stdout)
	}
	// The views that promise kube-proxy's exact bytes stay exact; the notes
	// on stderr say what was assumed.
	for _, args := range [][]string{{"--iptables-view", "restore"}, {"-b", "nft", "--nft-view", "transaction"}} {
		r := runCmd(t, gitApp, append([]string{"compile", "-f", "-"}, args...)...)
		if r.code != 0 || strings.Contains(r.stdout, "# svc2rules") || !strings.Contains(r.stderr, "allocated clusterIP") {
			t.Errorf("%v: exit %d, output starts %.80q", args, r.code, r.stdout)
		}
	}
	r = runCmd(t, gitApp, "compile", "-f", "-", "-b", "ipvs", "--ipvs-section", "ipvsadm")
	if r.code != 0 || strings.HasPrefix(r.stdout, "#") {
		t.Errorf("ipvsadm section must not get the comment: exit %d %.40q", r.code, r.stdout)
	}
}

func TestNoAllocate(t *testing.T) {
	r := runCmd(t, gitApp, "compile", "-f", "-", "--no-allocate")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if strings.Contains(r.stdout, "demo/web") || strings.HasPrefix(r.stdout, "#") {
		t.Errorf("--no-allocate compiled a Service without ClusterIP:\n%s", r.stdout)
	}
	for _, want := range []string{"Service demo/web: has no clusterIP", "--no-allocate: 1 workload(s) ignored"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q: %s", want, r.stderr)
		}
	}
	m := runCmd(t, gitApp, "materialize", "-f", "-", "--no-allocate")
	if m.code != 0 || !strings.Contains(m.stdout, "# Assumed: nothing (--no-allocate).") || strings.Contains(m.stdout, "clusterIP:") {
		t.Errorf("materialize --no-allocate: exit %d\n%s", m.code, m.stdout)
	}
}

func TestMaterializeErrors(t *testing.T) {
	conflict := "apiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: x}\nspec: {clusterIP: 10.96.1.1, ports: [{port: 80}]}\n---\n" +
		"apiVersion: v1\nkind: Service\nmetadata: {name: b, namespace: x}\nspec: {clusterIP: 10.96.1.1, ports: [{port: 80}]}\n"
	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		code  int
		want  string
	}{
		{"no input", "", []string{"materialize"}, 2, "no input"},
		{"bad node port range", gitApp, []string{"materialize", "-f", "-", "--service-node-port-range", "32767-30000"}, 2, "--service-node-port-range: invalid port range"},
		{"bad nodes", gitApp, []string{"compile", "-f", "-", "--nodes", "Node_1"}, 2, "--nodes: node \"Node_1\""},
		{"bad service CIDR", gitApp, []string{"materialize", "-f", "-", "--service-cidrs", "10.96.0.0/99"}, 2, "--service-cidrs: invalid CIDR"},
		{"conflicting ClusterIPs", conflict, []string{"compile", "-f", "-"}, 1, "<stdin>:6 (document 2): Service x/b: spec.clusterIPs: 10.96.1.1 is already the ClusterIP of Service x/a"},
		{"RequireDualStack on a single-stack cluster", strings.Replace(gitApp, "PreferDualStack", "RequireDualStack", 1), []string{"materialize", "-f", "-", "--service-cidrs", "10.96.0.0/16"}, 1, "are single-stack"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCmd(t, tc.stdin, tc.args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) || r.stdout != "" {
				t.Errorf("exit %d (want %d), stderr %q (want %q), stdout %.60q", r.code, tc.code, r.stderr, tc.want, r.stdout)
			}
		})
	}
}

func TestMaterializeFlagsAndHelp(t *testing.T) {
	r := runCmd(t, gitApp, "materialize", "-f", "-", "--nodes", "a=z1,b=z2", "--service-cidrs", "10.100.0.0/16", "--service-node-port-range", "31000-31099", "--cluster-cidr", "10.1.0.0/16")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, re := range []string{`clusterIP: 10\.100\.`, `nodePort: 310\d\d\b`, `nodeName: [ab]\n`, `zone: z[12]\n`, `- 10\.1\.\d+\.\d+\n`} {
		if !regexp.MustCompile(re).MatchString(r.stdout) {
			t.Errorf("output lacks %s", re)
		}
	}
	if strings.Contains(r.stdout, "fd00:10:96") {
		t.Error("--service-cidrs IPv4 only: no IPv6 ClusterIP expected")
	}
	h := runCmd(t, "", "--help")
	if !strings.Contains(h.stdout, "materialize") {
		t.Errorf("help does not list materialize: %s", h.stdout)
	}
	hc := runCmd(t, "", "compile", "--help")
	for _, f := range []string{"--no-allocate", "--service-node-port-range", "--nodes"} {
		if !strings.Contains(hc.stdout, f) {
			t.Errorf("compile --help lacks %s", f)
		}
	}
}

func TestGitAppExample(t *testing.T) {
	r := runCmd(t, "", "compile", "-f", "../../examples/git-app/", "--node-name", "node-1", "--node-ip", "192.168.0.10", "--cluster-cidr", "10.244.0.0/16")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "# svc2rules: allocated ") || !strings.Contains(r.stdout, "blog/web:http") {
		t.Errorf("exit %d: %s\n%.300s", r.code, r.stderr, r.stdout)
	}
	// The README's first command reads examples/ non-recursively: unchanged by the subdirectory.
	f := runCmd(t, "", "compile", "-f", "../../examples/", "--node-name", "node-a", "--node-ip", "192.168.0.10", "--cluster-cidr", "10.244.0.0/16")
	if f.code != 0 || strings.Contains(f.stdout, "blog/") || strings.HasPrefix(f.stdout, "#") {
		t.Errorf("examples/: exit %d: %s", f.code, f.stderr)
	}
}

// repo writes n Git-style Services, each with a one-replica Deployment; every
// tenth is a NodePort and every 25th a LoadBalancer with
// externalTrafficPolicy Local.
func repo(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteString(gitService(fmt.Sprintf("team-%d", i%7), fmt.Sprintf("svc-%03d", i), i))
	}
	return b.String()
}

func gitService(ns, name string, i int) string {
	typ := "ClusterIP"
	extra := ""
	switch {
	case i%25 == 0:
		typ, extra = "LoadBalancer", "\n  externalTrafficPolicy: Local"
	case i%10 == 0:
		typ = "NodePort"
	}
	return fmt.Sprintf(`---
apiVersion: apps/v1
kind: Deployment
metadata: {name: %[2]s, namespace: %[1]s}
spec:
  selector: {matchLabels: {app: %[2]s}}
  template:
    metadata: {labels: {app: %[2]s}}
    spec: {containers: [{name: c, image: x, ports: [{name: http, containerPort: 8080}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: %[2]s, namespace: %[1]s}
spec:
  type: %[3]s%[4]s
  selector: {app: %[2]s}
  ports: [{name: http, port: 80, targetPort: http}]
`, ns, name, typ, extra)
}

// ruleLines returns the set of output lines, each with the number of times it occurs.
func ruleLines(s string) map[string]int {
	m := map[string]int{}
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(l, "#") {
			m[l]++
		}
	}
	return m
}

// TestAddingOneServiceChangesOnlyItsRules: a 500-Service repository, one
// Service (with its Deployment) added: every rule that changes belongs to the
// new Service, in every backend; no other Service's ClusterIP, node port or
// pod address moves.
func TestAddingOneServiceChangesOnlyItsRules(t *testing.T) {
	base := repo(500)
	backends := []string{"iptables", "nft", "ipvs"}
	args := func(backend string) []string {
		return []string{"compile", "-f", "-", "-b", backend, "--node-name", "node-1", "--node-ip", "192.168.0.2", "--cluster-cidr", "10.244.0.0/16"}
	}
	baseLines := map[string]map[string]int{}
	for _, backend := range backends {
		a := runCmd(t, base, args(backend)...)
		if a.code != 0 {
			t.Fatalf("exit %d: %s", a.code, a.stderr)
		}
		baseLines[backend] = ruleLines(a.stdout)
	}
	for _, added := range []struct {
		ns, name string
		i        int // 1: ClusterIP, 10: NodePort, 25: LoadBalancer eTP Local
	}{{"team-3", "new-api", 1}, {"aaa", "first", 10}, {"team-0", "svc-250b", 25}} {
		with := base + gitService(added.ns, added.name, added.i)
		mine := ownTokens(t, with, added.ns, added.name)
		for _, backend := range backends {
			b := runCmd(t, with, args(backend)...)
			if b.code != 0 {
				t.Fatalf("exit %d: %s", b.code, b.stderr)
			}
			{
				i := added.i
				la, lb := baseLines[backend], ruleLines(b.stdout)
				var removed, addedLines []string
				for l, n := range la {
					if lb[l] < n {
						removed = append(removed, l)
					}
				}
				for l, n := range lb {
					if la[l] < n {
						addedLines = append(addedLines, l)
					}
				}
				if len(removed) > 0 {
					sort.Strings(removed)
					t.Errorf("%s %s/%s (type %d): adding it removed rules of others:\n%s", backend, added.ns, added.name, i, strings.Join(removed, "\n"))
				}
				if len(addedLines) == 0 {
					t.Errorf("%s: adding %s/%s changed nothing", backend, added.ns, added.name)
				}
				// Every new line is about the new Service: it names it, or holds
				// one of its values (ClusterIP, node ports, pod addresses) or a
				// chain of its own lines.
				own := added.ns + "/" + added.name
				for _, l := range addedLines {
					if strings.Contains(l, own) {
						for _, tok := range strings.FieldsFunc(l, splitTokens) {
							if len(tok) > 8 {
								mine[tok] = true
							}
						}
					}
				}
				for _, l := range addedLines {
					if strings.Contains(l, own) || strings.TrimSpace(l) == "" || related(l, mine) {
						continue
					}
					t.Errorf("%s: adding %s/%s added a line not about it: %s", backend, added.ns, added.name, l)
				}
			}
		}
	}
}

func splitTokens(r rune) bool {
	return r == ' ' || r == '"' || r == ',' || r == '{' || r == '}' || r == ':' || r == '/' || r == '=' || r == '\t'
}

// ownTokens are the values the cluster gave a Service: ClusterIPs, node
// ports and its endpoints' addresses.
func ownTokens(t *testing.T, input, ns, name string) map[string]bool {
	t.Helper()
	o := cli.DefaultCompileOptions()
	o.Files = []string{"-"}
	o.NodeName, o.NodeIPs, o.ClusterCIDRs = "node-1", []string{"192.168.0.2"}, []string{"10.244.0.0/16"}
	res, err := cli.Materialize(o, strings.NewReader(input))
	if err != nil {
		t.Fatal(err)
	}
	tokens := map[string]bool{}
	for _, s := range res.Materialized.Services {
		if s.Namespace == ns && s.Name == name {
			for _, ip := range s.Spec.ClusterIPs {
				tokens[ip] = true
			}
			for _, p := range s.Spec.Ports {
				tokens[fmt.Sprint(p.NodePort)] = p.NodePort != 0
			}
			if s.Spec.HealthCheckNodePort != 0 {
				tokens[fmt.Sprint(s.Spec.HealthCheckNodePort)] = true
			}
		}
	}
	for _, sl := range res.Materialized.EndpointSlices {
		if sl.Namespace == ns && sl.Labels["kubernetes.io/service-name"] == name {
			for _, e := range sl.Endpoints {
				tokens[e.Addresses[0]] = true
			}
		}
	}
	return tokens
}

// related reports whether a line mentions a token (chain, address, port)
// of the new Service's own lines.
func related(l string, mine map[string]bool) bool {
	for _, tok := range strings.FieldsFunc(l, splitTokens) {
		if mine[tok] {
			return true
		}
	}
	return false
}

func TestMaterializeOutputFile(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "cluster.yaml")
	r := runCmd(t, gitApp, "materialize", "-f", "-", "-o", out)
	data, err := os.ReadFile(out)
	if r.code != 0 || err != nil || !strings.HasPrefix(string(data), "# svc2rules materialize") || r.stdout != "" {
		t.Errorf("exit %d, err %v, stdout %q", r.code, err, r.stdout)
	}
}

// TestGoldenGitScenariosMaterialize: for every golden/git-* scenario,
// materialize on input.yaml with the scenario's args reproduces the
// committed materialized.yaml (the file kube-proxy's expected rules were
// generated from) byte for byte.
func TestGoldenGitScenariosMaterialize(t *testing.T) {
	dirs, err := filepath.Glob("../../golden/git-*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no golden/git-* scenarios: %v", err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join(dir, "materialized.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			args := []string{"materialize"}
			raw, err := os.ReadFile(filepath.Join(dir, "args"))
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range strings.Split(string(raw), "\n") {
				if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
					args = append(args, l)
				}
			}
			r := runCmd(t, "", append(args, "-f", filepath.Join(dir, "input.yaml"))...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			if r.stdout != string(want) {
				t.Errorf("materialize differs from the committed materialized.yaml (regenerate the scenario)")
			}
		})
	}
}
