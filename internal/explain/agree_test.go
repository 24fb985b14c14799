package explain_test

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/svc2rules/svc2rules/internal/cli"
	"github.com/svc2rules/svc2rules/internal/explain"
	"github.com/svc2rules/svc2rules/internal/trace"
)

// explain reads the plan; trace interprets rule text. On every golden
// scenario, for every service port, the endpoints (and their shares) that
// explain names for internal and external traffic must be exactly where
// trace sends a packet through svc2rules' rules AND through the real
// kube-proxy's rules (the golden files), and REJECT/DROP must agree too.

const goldenDir = "../../golden"

func goldenOpts(t *testing.T, dir string) cli.CompileOptions {
	t.Helper()
	o := cli.DefaultCompileOptions()
	fs := pflag.NewFlagSet(dir, pflag.ContinueOnError)
	o.AddFlags(fs)
	data, err := os.ReadFile(filepath.Join(dir, "args"))
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			args = append(args, line)
		}
	}
	if err := fs.Parse(args); err != nil {
		t.Fatalf("%s/args: %v", dir, err)
	}
	if o.ConfigFile != "" && !filepath.IsAbs(o.ConfigFile) {
		o.ConfigFile = filepath.Join(dir, o.ConfigFile)
	}
	if err := o.ApplyConfigFile(fs); err != nil {
		t.Fatal(err)
	}
	o.Files = []string{filepath.Join(dir, "input.yaml")}
	return o
}

func scenarios(t *testing.T) []string {
	ents, err := os.ReadDir(goldenDir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		dir := filepath.Join(goldenDir, e.Name())
		if _, err := os.Stat(filepath.Join(dir, "args")); err == nil && e.IsDir() {
			out = append(out, dir)
		}
	}
	return out
}

type probe struct {
	what string
	q    trace.Query
	want explain.Traffic
}

// probes derives packets from a report: one for every way in that
// explain lists, the cluster IP from a pod, the others from outside.
func probes(p explain.Port, nodeIP string, taken map[string]int) []probe {
	proto := strings.ToLower(p.Protocol)
	v6 := strings.Contains(p.ClusterIP, ":")
	podSrc, extSrc := "10.250.250.250", "203.0.113.250"
	if v6 {
		podSrc, extSrc = "fd00:ffff::250", "2001:db8:ffff::250"
	}
	var out []probe
	add := func(what, via, src, from string, want explain.Traffic) {
		var dst netip.AddrPort
		if n, ok := strings.CutPrefix(via, "NodePort "); ok {
			if nodeIP == "" || !(strings.Contains(p.NodePort.Where, nodeIP) || strings.HasPrefix(p.NodePort.Where, "every")) {
				return
			}
			dst = netip.MustParseAddrPort(net.JoinHostPort(nodeIP, n))
		} else {
			f := strings.Fields(via)
			dst = netip.MustParseAddrPort(f[len(f)-1])
		}
		if taken[fmt.Sprintf("%s|%d|%s", dst.Addr(), dst.Port(), proto)] != 1 || (!strings.HasPrefix(via, "NodePort") && dst.Addr().String() == nodeIP) {
			return
		}
		out = append(out, probe{what + " " + via, trace.Query{Src: netip.MustParseAddr(src), Dst: dst.Addr(), DstPort: dst.Port(), Proto: proto, From: from}, want})
	}
	for _, via := range p.Internal.Via {
		add("from a pod:", via, podSrc, trace.FromPod, p.Internal)
	}
	if p.External == nil {
		return out
	}
	for _, via := range p.External.Via {
		src := extSrc
		if strings.HasPrefix(via, "load balancer IP") && len(p.SourceRanges) > 0 {
			pfx := netip.MustParsePrefix(p.SourceRanges[0])
			src = pfx.Addr().Next().String()
			if pfx.IsSingleIP() {
				src = pfx.Addr().String()
			}
		}
		add("from outside:", via, src, trace.FromExternal, *p.External)
	}
	return out
}

func verdictOf(t explain.Traffic, backend string) string {
	switch {
	case t.Verdict == "load-balanced" && backend == "userspace":
		return trace.VerdictProxy
	case t.Verdict == "load-balanced":
		return trace.VerdictDNAT
	}
	return t.Verdict
}

func compare(r *trace.Result, want explain.Traffic, backend string) string {
	wv := verdictOf(want, backend)
	if got := r.Verdict(); got != wv {
		return fmt.Sprintf("trace says %s, explain %s (%s)", got, wv, want.Why)
	}
	if wv != trace.VerdictDNAT && wv != trace.VerdictProxy {
		return ""
	}
	got := r.Endpoints()
	var lines []string
	for _, s := range want.Shares {
		if math.Abs(got[s.Endpoint]-s.Weight) > 1e-6 {
			lines = append(lines, fmt.Sprintf("%s: trace %.4f, explain %.4f", s.Endpoint, got[s.Endpoint], s.Weight))
		}
		delete(got, s.Endpoint)
	}
	for e, p := range got {
		lines = append(lines, fmt.Sprintf("%s: trace %.4f, explain does not use it", e, p))
	}
	sort.Strings(lines)
	if len(lines) > 6 {
		lines = append(lines[:6], fmt.Sprintf("... %d more", len(lines)-6))
	}
	return strings.Join(lines, "; ")
}

func TestExplainAgreesWithTraceOnGoldens(t *testing.T) {
	goldenFile := map[string]string{"iptables": "iptables.txt", "nft": "nft.txt", "ipvs": "ipvs.txt"}
	total := 0
	for _, dir := range scenarios(t) {
		name := filepath.Base(dir)
		for _, backend := range []string{"iptables", "nft", "ipvs", "userspace"} {
			t.Run(name+"/"+backend, func(t *testing.T) {
				o := goldenOpts(t, dir)
				o.Backend = backend
				fam, err := o.Family()
				if err != nil {
					t.Fatal(err)
				}
				if backend == "userspace" && fam != "IPv4" {
					t.Skip("the userspace mode is IPv4 here")
				}
				rep, err := explain.Run(explain.Options{Compile: o, Families: []string{strings.ToLower(string(fam))}})
				if err != nil {
					if strings.Contains(err.Error(), "no service port") {
						t.Skip(err)
					}
					t.Fatal(err)
				}
				c := o
				c.IPTablesView, c.IPVSSection = "save", ""
				res, err := cli.Compile(c, nil)
				if err != nil {
					t.Fatal(err)
				}
				ours := trace.NewRuleset()
				if err := ours.Parse("svc2rules", res.Output); err != nil {
					t.Fatal(err)
				}
				if backend == "userspace" {
					c.UserspaceSection = "table"
					tbl, err := cli.Compile(c, nil)
					if err != nil {
						t.Fatal(err)
					}
					if err := ours.Parse("svc2rules table", tbl.Output); err != nil {
						t.Fatal(err)
					}
				}
				rulesets := map[string]*trace.Ruleset{"svc2rules": ours}
				if data, err := os.ReadFile(filepath.Join(dir, goldenFile[backend])); err == nil {
					kp := trace.NewRuleset()
					if err := kp.Parse("kube-proxy "+goldenFile[backend], string(data)); err != nil {
						t.Fatalf("trace cannot read kube-proxy's %s: %v", goldenFile[backend], err)
					}
					rulesets["kube-proxy"] = kp
				}
				var env trace.Env
				for _, a := range res.Plan.Node.Addresses {
					ip := netip.MustParseAddr(a)
					env.Local = append(env.Local, netip.PrefixFrom(ip, ip.BitLen()))
				}
				if ip, err := netip.ParseAddr(res.Plan.Node.IP); err == nil {
					env.PrimaryIP = ip
				}
				// Addresses used by more than one service port (kube-proxy
				// resolves such conflicts by map order) are not probed.
				taken := map[string]int{}
				for _, p := range rep.Ports {
					proto := strings.ToLower(p.Protocol)
					taken[fmt.Sprintf("%s|%d|%s", p.ClusterIP, p.Port, proto)]++
					for _, ip := range append(append([]string(nil), p.ExternalIPs...), p.LoadBalancerIPs...) {
						taken[fmt.Sprintf("%s|%d|%s", ip, p.Port, proto)]++
					}
					if p.NodePort != nil {
						taken[fmt.Sprintf("%s|%d|%s", res.Plan.Node.IP, p.NodePort.Port, proto)]++
					}
				}
				if backend == "userspace" {
					// The userspace mode reads spec.clusterIP of any family and
					// Endpoints objects: its own view of the Services.
					for k := range taken {
						taken[k] = 1
					}
				}
				for _, p := range rep.Ports {
					for _, pr := range probes(p, res.Plan.Node.IP, taken) {
						for _, who := range []string{"svc2rules", "kube-proxy"} {
							rs := rulesets[who]
							if rs == nil {
								continue
							}
							r, err := trace.Trace(rs, pr.q, env)
							if err != nil {
								t.Fatalf("%s %s: %v", p.SPN, pr.what, err)
							}
							total++
							if msg := compare(r, pr.want, backend); msg != "" {
								t.Errorf("%s %s (%s rules): %s\n%s", p.SPN, pr.what, who, msg, trace.Text(r))
							}
						}
					}
				}
			})
		}
	}
	t.Logf("%d traces agree with explain", total)
}
