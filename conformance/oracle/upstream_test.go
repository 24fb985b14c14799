package oracle

// These tests prove that the oracle reproduces upstream kube-proxy exactly: they
// feed the inputs of upstream's TestOverallIPTablesRules / TestOverallNFTablesRules
// / TestOverallNFTablesRulesIPv6 (transcribed to YAML in testdata/upstream/)
// through the oracle configured like upstream's NewFakeProxier, and compare the
// output with the expected text read, at test time, straight out of the upstream
// proxier_test.go files in the Go module cache (nothing is copied by hand).

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/lithammer/dedent"
)

func kubernetesModuleDir(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "k8s.io/kubernetes").Output()
	if err != nil {
		t.Fatalf("go list -m k8s.io/kubernetes: %v", err)
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		t.Fatalf("k8s.io/kubernetes is not in the module cache (run `go mod download`)")
	}
	return dir
}

// upstreamExpected returns the value of the local variable `expected` in the
// function fn of the Go file at path, evaluating string literals, `+`,
// dedent.Dedent(...) calls and references to package-level string variables.
func upstreamExpected(t *testing.T, path, fn string) string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, 0)
	if err != nil {
		t.Fatalf("parsing %s: %v", path, err)
	}
	globals := map[string]ast.Expr{}
	for _, d := range f.Decls {
		if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.VAR {
			for _, s := range g.Specs {
				vs := s.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if i < len(vs.Values) {
						globals[n.Name] = vs.Values[i]
					}
				}
			}
		}
	}
	var eval func(e ast.Expr) string
	eval = func(e ast.Expr) string {
		switch x := e.(type) {
		case *ast.BasicLit:
			s, err := strconv.Unquote(x.Value)
			if err != nil {
				t.Fatalf("unquote %s: %v", x.Value, err)
			}
			return s
		case *ast.BinaryExpr:
			if x.Op != token.ADD {
				t.Fatalf("unsupported operator %v at %v", x.Op, fset.Position(x.Pos()))
			}
			return eval(x.X) + eval(x.Y)
		case *ast.CallExpr:
			if sel, ok := x.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "Dedent" && len(x.Args) == 1 {
				return dedent.Dedent(eval(x.Args[0]))
			}
		case *ast.Ident:
			if g, ok := globals[x.Name]; ok {
				return eval(g)
			}
		}
		t.Fatalf("cannot evaluate expression at %v", fset.Position(e.Pos()))
		return ""
	}
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok || fd.Name.Name != fn {
			continue
		}
		var result *string
		ast.Inspect(fd.Body, func(n ast.Node) bool {
			as, ok := n.(*ast.AssignStmt)
			if !ok || result != nil || len(as.Lhs) != 1 || len(as.Rhs) != 1 {
				return true
			}
			if id, ok := as.Lhs[0].(*ast.Ident); ok && id.Name == "expected" {
				s := eval(as.Rhs[0])
				result = &s
				return false
			}
			return true
		})
		if result == nil {
			t.Fatalf("no `expected :=` in %s", fn)
		}
		return *result
	}
	t.Fatalf("function %s not found in %s", fn, path)
	return ""
}

// sortNFTablesTransaction is the normalization upstream's
// assertNFTablesTransactionEqual applies to both sides
// (pkg/proxy/nftables/helpers_test.go): drop blank and comment lines, order by
// object type (table, chain, rule, set, map, element), then object name, keep rule
// order, and order other same-named lines textually.
func sortNFTablesTransaction(tx string) string {
	objectOrder := map[string]int{"table": 10, "chain": 9, "rule": 8, "set": 7, "map": 6, "element": 5}
	var lines []string
	for _, l := range strings.Split(tx, "\n") {
		if l == "" || l[0] == '#' {
			continue
		}
		lines = append(lines, l)
	}
	sort.SliceStable(lines, func(i, j int) bool {
		wi, wj := strings.Split(lines[i], " "), strings.Split(lines[j], " ")
		if len(wi) < 5 || len(wj) < 5 {
			return false
		}
		if wi[1] != wj[1] {
			return objectOrder[wi[1]] >= objectOrder[wj[1]]
		}
		if wi[4] != wj[4] {
			return wi[4] < wj[4]
		}
		if wi[1] == "rule" {
			return false
		}
		return lines[i] < lines[j]
	})
	return strings.Join(lines, "\n")
}

// runUpstream runs the oracle configured exactly like upstream's unit-test
// NewFakeProxier (node test-node, node IP 192.168.0.2, interface addresses of the
// tests, pod CIDR 10.0.0.0/8 / fd00:10::/64, mark 0x4000, nftables
// nodeport-addresses 192.168.0.2/32,2001:db8::1/128 and ServiceCIDRs
// 172.30.0.0/16,fd00:10:96::/112, localhost-NodePort gate on, no API defaulting).
func runUpstream(t *testing.T, backend, family, input, view string) string {
	t.Helper()
	data, err := os.ReadFile(input)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"--ip-family=" + family, "--node-name=test-node",
		"--node-addresses=192.168.0.2,192.168.1.2,192.168.99.11,2001:db8::1,2001:db8:1::2"}
	switch backend {
	case "iptables":
		args = append(args, "--node-ip=192.168.0.2", "--cluster-cidr=10.0.0.0/8,fd00:10::/64")
	case "nft":
		nodeIP := "192.168.0.2"
		if family == "ipv6" {
			nodeIP = "2001:db8::1"
		}
		args = append(args, "--node-ip="+nodeIP, "--cluster-cidr=10.0.0.0/8,fd00:10::/64",
			"--nodeport-addresses=192.168.0.2/32,2001:db8::1/128",
			"--service-cidrs=172.30.0.0/16,fd00:10:96::/112",
			"--feature-gates=KubeProxyNFTablesLocalhostNodePorts=true")
	case "ipvs":
		args = append(args, "--node-ip=192.168.0.2") // NewFakeProxier: no local detector
	}
	s, err := ParseArgs(args)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(backend, s, data, RunOptions{IPTablesView: view, UpstreamFixture: true, MasqueradeMark: "0x4000", NoAPIDefaults: true})
	if err != nil {
		t.Fatalf("%s %s: %v", backend, input, err)
	}
	return res.Output
}

func TestUpstreamOverallIPTablesRules(t *testing.T) {
	src := filepath.Join(kubernetesModuleDir(t), "pkg/proxy/iptables/proxier_test.go")
	expected := strings.TrimLeft(upstreamExpected(t, src, "TestOverallIPTablesRules"), " \t\n")
	got := runUpstream(t, "iptables", "ipv4", "testdata/upstream/overall-iptables.yaml", "restore")
	if got != expected {
		t.Fatalf("iptables output differs from upstream TestOverallIPTablesRules expectation:\n%s", cmp.Diff(expected, got))
	}
	t.Logf("byte-for-byte identical to upstream's expected text (%d bytes, %d lines)", len(got), strings.Count(got, "\n"))
}

func testUpstreamNFTables(t *testing.T, fn, input, family string) {
	src := filepath.Join(kubernetesModuleDir(t), "pkg/proxy/nftables/proxier_test.go")
	expected := upstreamExpected(t, src, fn)
	got := runUpstream(t, "nft", family, input, "save")
	if diff := cmp.Diff(sortNFTablesTransaction(expected), sortNFTablesTransaction(got)); diff != "" {
		t.Fatalf("nftables output differs from upstream %s expectation (after upstream's normalization):\n%s", fn, diff)
	}
	t.Logf("identical to upstream's expected text after upstream's own sortNFTablesTransaction normalization (%d lines)",
		strings.Count(sortNFTablesTransaction(got), "\n")+1)
}

func TestUpstreamOverallNFTablesRules(t *testing.T) {
	testUpstreamNFTables(t, "TestOverallNFTablesRules", "testdata/upstream/overall-nftables.yaml", "ipv4")
}

func TestUpstreamOverallNFTablesRulesIPv6(t *testing.T) {
	testUpstreamNFTables(t, "TestOverallNFTablesRulesIPv6", "testdata/upstream/overall-nftables-ipv6.yaml", "ipv6")
}

// TestNegativeControl: with the localhost-NodePort gate off, the nftables
// comparison must fail (the harness can tell a wrong configuration apart).
func TestNegativeControl(t *testing.T) {
	src := filepath.Join(kubernetesModuleDir(t), "pkg/proxy/nftables/proxier_test.go")
	expected := upstreamExpected(t, src, "TestOverallNFTablesRules")
	data, _ := os.ReadFile("testdata/upstream/overall-nftables.yaml")
	s, _ := ParseArgs([]string{"--node-name=test-node", "--node-ip=192.168.0.2", "--cluster-cidr=10.0.0.0/8",
		"--nodeport-addresses=192.168.0.2/32", "--service-cidrs=172.30.0.0/16"})
	res, err := Run("nft", s, data, RunOptions{UpstreamFixture: true, MasqueradeMark: "0x4000", NoAPIDefaults: true})
	if err != nil {
		t.Fatal(err)
	}
	if sortNFTablesTransaction(expected) == sortNFTablesTransaction(res.Output) {
		t.Fatal("negative control: output equal to upstream's although the localhost-NodePort gate is off")
	}
}

// TestFastIPTablesFakeEquivalence checks that the indexed copies of the upstream
// fake's RestoreAll/ParseIPTablesDump give byte-identical output to the upstream
// implementations.
func TestFastIPTablesFakeEquivalence(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.yaml")
	files = append(files, "testdata/upstream/overall-iptables.yaml")
	for _, f := range files {
		data, _ := os.ReadFile(f)
		for _, backend := range []string{"iptables", "ipvs"} {
			for _, view := range []string{"save", "restore"} {
				s, _ := ParseArgs([]string{"--node-name=node1", "--node-ip=192.168.0.2", "--cluster-cidr=10.0.0.0/16"})
				fast, err := Run(backend, s, data, RunOptions{IPTablesView: view})
				if err != nil {
					t.Fatal(err)
				}
				slow, err := Run(backend, s, data, RunOptions{IPTablesView: view, UpstreamFakeRestore: true})
				if err != nil {
					t.Fatal(err)
				}
				if fast.Output != slow.Output {
					t.Errorf("%s %s %s: fast fake differs from upstream fake:\n%s", f, backend, view, cmp.Diff(slow.Output, fast.Output))
				}
			}
		}
	}
}

// TestDeterministic runs every test input in every backend several times.
func TestDeterministic(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.yaml")
	files = append(files, "testdata/upstream/overall-iptables.yaml")
	for _, f := range files {
		data, _ := os.ReadFile(f)
		for _, backend := range Backends {
			s, _ := ParseArgs([]string{"--node-name=node1", "--node-ip=192.168.0.2", "--cluster-cidr=10.0.0.0/16"})
			first, err := Run(backend, s, data, RunOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 5; i++ {
				again, err := Run(backend, s, data, RunOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if again.Output != first.Output {
					t.Fatalf("%s %s: non-deterministic output:\n%s", f, backend, cmp.Diff(first.Output, again.Output))
				}
			}
		}
	}
}

// TestUpstreamIPVSLoadBalancerSourceRanges re-checks, on kporacle's text output, the
// structured expectations of upstream's ipvs TestLoadBalancerSourceRanges
// (checkIPVS / checkIPSet / checkIptables; the ipvs tests have no full-text
// expectations to compare byte for byte).
func TestUpstreamIPVSLoadBalancerSourceRanges(t *testing.T) {
	out := runUpstream(t, "ipvs", "ipv4", "testdata/upstream/ipvs-loadbalancer-source-ranges.yaml", "save")
	section := func(name string) []string {
		var lines []string
		in := false
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "### ") {
				in = l == "### "+name
				continue
			}
			if in && l != "" {
				lines = append(lines, l)
			}
		}
		return lines
	}
	// checkIPVS: 2 virtual servers; the LB one has exactly 10.180.0.1:80.
	var vs, lbRS []string
	for _, l := range section("ipvsadm-save -n") {
		if strings.HasPrefix(l, "-A ") {
			vs = append(vs, l)
		}
		if strings.HasPrefix(l, "-a -t 1.2.3.4:80 ") {
			lbRS = append(lbRS, l)
		}
	}
	if len(vs) != 2 || !cmp.Equal(lbRS, []string{"-a -t 1.2.3.4:80 -r 10.180.0.1:80 -m -w 1"}) {
		t.Errorf("ipvs: virtual servers %v, LB real servers %v", vs, lbRS)
	}
	// checkIPSet: exact entries of the three sets.
	entries := map[string][]string{}
	for _, l := range section("ipset save") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "add" {
			entries[f[1]] = append(entries[f[1]], f[2])
		}
	}
	for set, want := range map[string][]string{
		"KUBE-LOAD-BALANCER":             {"1.2.3.4,tcp:80"},
		"KUBE-LOAD-BALANCER-FW":          {"1.2.3.4,tcp:80"},
		"KUBE-LOAD-BALANCER-SOURCE-CIDR": {"1.2.3.4,tcp:80,10.0.0.0/8"},
	} {
		if !cmp.Equal(entries[set], want) {
			t.Errorf("ipset %s: got %v, want %v", set, entries[set], want)
		}
	}
	// checkIptables: jump target and match-set of every rule, in order.
	type jm struct{ jump, set string }
	rules := map[string][]jm{}
	for _, l := range section("iptables-save") {
		if !strings.HasPrefix(l, "-A ") {
			continue
		}
		f := strings.Fields(l)
		var j, s string
		for i := range f {
			if f[i] == "-j" && i+1 < len(f) {
				j = f[i+1]
			}
			if f[i] == "--match-set" && i+1 < len(f) {
				s = f[i+1]
			}
		}
		rules[f[1]] = append(rules[f[1]], jm{j, s})
	}
	for chain, want := range map[string][]jm{
		"KUBE-SERVICES": {{"RETURN", ""}, {"KUBE-LOAD-BALANCER", "KUBE-LOAD-BALANCER"}, {"KUBE-MARK-MASQ", "KUBE-CLUSTER-IP"},
			{"KUBE-NODE-PORT", ""}, {"ACCEPT", "KUBE-CLUSTER-IP"}, {"ACCEPT", "KUBE-LOAD-BALANCER"}},
		"KUBE-PROXY-FIREWALL":         {{"KUBE-SOURCE-RANGES-FIREWALL", "KUBE-LOAD-BALANCER-FW"}},
		"KUBE-SOURCE-RANGES-FIREWALL": {{"RETURN", "KUBE-LOAD-BALANCER-SOURCE-CIDR"}, {"DROP", ""}},
	} {
		if !cmp.Equal(rules[chain], want, cmp.AllowUnexported(jm{})) {
			t.Errorf("iptables chain %s: got %v, want %v", chain, rules[chain], want)
		}
	}
}
