package ipvs_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestScriptSyntax checks every golden scenario's script with sh -n.
func TestScriptSyntax(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	for _, sc := range goldenScenarios(t) {
		out, ok := compileScenario(t, sc, "--ipvs-exclude-cidrs=10.0.0.0/8,fd00::/8")
		if !ok {
			continue
		}
		cmd := exec.Command(sh, "-n")
		cmd.Stdin = strings.NewReader(out)
		if msg, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: sh -n: %v\n%s", sc.name, err, msg)
		}
	}
}

// Stubs for the tools this kernel lacks (no IPVS, no dummy interfaces). They
// log their arguments to $D/log; "ipvsadm -S -n" shows a table with two
// stale IPv4 virtual servers (one inside the exclude CIDRs) and one IPv6
// one; "ip -o -4 addr show" shows a stale and a loopback address on
// kube-ipvs0. iptables-restore drops the -m ipvs rules the kernel cannot load.
var stubs = map[string]string{
	"ipvsadm": `#!/bin/sh
echo "ipvsadm $*" >> "$D/log"
case "$1" in
-S) printf '%s\n' '-A -t 10.255.0.1:80 -s rr' '-a -t 10.255.0.1:80 -r 10.0.0.1:80 -m -w 1' '-A -u 10.9.9.9:53 -s rr' '-A -t [fd00::1]:80 -s rr' '-A -f 7 -s rr' ;;
-R) cat > "$D/ipvsadm-R" ;;
esac
`,
	"sysctl": `#!/bin/sh
echo "sysctl $*" >> "$D/log"
`,
	"ip": `#!/bin/sh
echo "ip $*" >> "$D/log"
case "$*" in
"link show kube-ipvs0") exit 1 ;;
"-o -4 addr show dev kube-ipvs0") printf '%s\n' '9: kube-ipvs0    inet 10.255.0.1/32 scope global kube-ipvs0\       valid_lft forever preferred_lft forever' '9: kube-ipvs0    inet 127.0.0.5/32 scope host kube-ipvs0' ;;
esac
exit 0
`,
	"iptables-restore": `#!/bin/sh
grep -v -e ' -m ipvs ' | /usr/sbin/iptables-restore "$@"
`,
}

// TestScriptRuns runs a scenario's whole script twice in a fresh network
// namespace, with ipset and iptables real and ipvsadm, ip, sysctl stubbed,
// and checks what each step did.
func TestScriptRuns(t *testing.T) {
	needNetns(t, "ipset", "iptables", "iptables-restore", "awk", "sed", "grep")
	if _, err := os.Stat("/usr/sbin/iptables-restore"); err != nil {
		t.Skip("needs /usr/sbin/iptables-restore")
	}
	manifests := webService + "---\n" + strings.Replace(lbLocal, "NODE", "test-node", 1)
	script := compileYAML(t, manifests, "exclude=10.9.0.0/16")
	want := map[string]string{}
	for _, s := range []string{"ipvsadm", "ipset", "addresses"} {
		want[s] = compileYAML(t, manifests, "section="+s)
	}

	files := map[string]string{"script.sh": script}
	for name, text := range stubs {
		files["bin/"+name] = text
	}
	d := t.TempDir()
	if err := os.MkdirAll(filepath.Join(d, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(d, name), []byte(text), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	run := `set -e; export PATH="$D/bin:$PATH"
sh "$D/script.sh"; ipset save > "$D/sets1"; iptables-save | grep -v '^#' > "$D/ipt1"
sh "$D/script.sh"; ipset save > "$D/sets2"; iptables-save | grep -v '^#' > "$D/ipt2"
cmp "$D/sets1" "$D/sets2"; cmp "$D/ipt1" "$D/ipt2"`
	cmd := exec.Command("unshare", "-n", "sh", "-c", run)
	cmd.Env = append(os.Environ(), "D="+d)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("script failed: %v\n%s", err, out)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(d, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := read("ipvsadm-R"); got != want["ipvsadm"] {
		t.Errorf("ipvsadm -R got\n%s\nwant\n%s", got, want["ipvsadm"])
	}
	log := read("log")
	// stale IPv4 VSs outside the exclude CIDRs deleted (twice: two runs); the
	// excluded one, the IPv6 one and the fwmark one kept.
	if n := strings.Count(log, "ipvsadm -D -t 10.255.0.1:80\n"); n != 2 {
		t.Errorf("stale virtual server deleted %d times, want 2:\n%s", n, log)
	}
	for _, keep := range []string{"-D -u 10.9.9.9:53", "[fd00::1]", "-f 7"} {
		if strings.Contains(log, keep) {
			t.Errorf("deleted %s:\n%s", keep, log)
		}
	}
	for _, a := range lines(want["addresses"]) {
		if !strings.Contains(log, "ip addr replace "+a+" dev kube-ipvs0\n") {
			t.Errorf("address %s not bound:\n%s", a, log)
		}
	}
	if !strings.Contains(log, "ip addr del 10.255.0.1/32 dev kube-ipvs0\n") || strings.Contains(log, "del 127.0.0.5") {
		t.Errorf("unbinding wrong:\n%s", log)
	}
	if !strings.Contains(log, "ip link add kube-ipvs0 type dummy\n") || !strings.Contains(log, "sysctl -qw net.ipv4.vs.conntrack=1\n") {
		t.Errorf("device or sysctls missing:\n%s", log)
	}
	// The kernel's sets hold exactly the payload's entries.
	sets := read("sets1")
	for _, l := range lines(want["ipset"]) {
		if strings.HasPrefix(l, "add ") && !strings.Contains(sets, l+"\n") {
			t.Errorf("kernel set misses %q", l)
		}
	}
	if strings.Count(sets, "\nadd ")+boolInt(strings.HasPrefix(sets, "add ")) != strings.Count(want["ipset"], "add ") {
		t.Errorf("kernel sets:\n%s\nwant the entries of\n%s", sets, want["ipset"])
	}
	// Jumps present once each after two runs, in kube-proxy's order.
	ipt := read("ipt1")
	for _, j := range []string{
		`-A INPUT -m comment --comment "kubernetes ipvs access filter" -j KUBE-IPVS-FILTER` + "\n" +
			`-A INPUT -m comment --comment "kube-proxy firewall rules" -j KUBE-PROXY-FIREWALL` + "\n" +
			`-A INPUT -m comment --comment "kubernetes health check rules" -j KUBE-NODE-PORT` + "\n",
		`-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES` + "\n",
		`-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODE-PORT` + "\n",
	} {
		if strings.Count(ipt, j) != 1 {
			t.Errorf("want once in iptables-save:\n%s\ngot:\n%s", j, ipt)
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
