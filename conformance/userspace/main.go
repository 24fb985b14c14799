// Command userspace writes the expected userspace-mode rules of the golden
// corpus (golden/<scenario>/userspace.txt) with the real kube-proxy v1.25.16
// userspace proxier (k8s.io/kubernetes v1.25.16 pkg/proxy/userspace,
// unmodified), never with svc2rules.
//
//	cd conformance/userspace
//	go run . -update [scenario...]   # rewrite userspace.txt and userspace.PROVENANCE
//	go run . -check  [scenario...]   # exit 1 if a committed userspace.txt or userspace-state.txt differs
//
// A scenario takes part when its directory has a userspace.args file (svc2rules
// compile flags for this backend, appended to args; may be empty). Each
// scenario runs in a fresh user and network namespace (unshare, so root or
// unprivileged user namespaces are needed): a dummy eth0 gets --node-ip and
// --node-addresses, the proxier is created with NewCustomProxier on bind
// address 0.0.0.0 (:: for --ip-family=ipv6) with the real iptables binary,
// fed the Services and Endpoints of input.yaml, and iptables-save is the
// output. See README.md for what is and is not kube-proxy's own doing.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/klog/v2"
)

// defaultBase is the start of svc2rules' default proxy port range
// (backends/userspace.DefaultProxyPortRange).
const defaultBase = 40000

const (
	expectedFile   = "userspace.txt"
	stateFile      = "userspace-state.txt"
	stateMarker    = "### load balancer state\n"
	provenanceFile = "userspace.PROVENANCE"
	argsFile       = "userspace.args"
)

func main() {
	os.Exit(run())
}

func run() int {
	update := flag.Bool("update", false, "rewrite userspace.txt and userspace.PROVENANCE of the scenarios")
	check := flag.Bool("check", false, "exit 1 if a committed userspace.txt differs from kube-proxy's output now")
	dir := flag.String("dir", "../../golden", "the golden directory")
	child := flag.String("child", "", "internal: run one scenario directory in this (fresh) namespace and print the rules")
	flag.Parse()
	if *child != "" {
		return runChild(*child)
	}
	if *update == *check {
		fmt.Fprintln(os.Stderr, "userspace: give exactly one of -update or -check")
		return 2
	}
	names := flag.Args()
	if len(names) == 0 {
		entries, err := os.ReadDir(*dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, "userspace:", err)
			return 2
		}
		for _, e := range entries {
			if _, err := os.Stat(filepath.Join(*dir, e.Name(), argsFile)); err == nil {
				names = append(names, e.Name())
			}
		}
		sort.Strings(names)
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "userspace:", err)
		return 2
	}
	status := 0
	for _, n := range names {
		n = filepath.Base(strings.TrimSuffix(n, "/"))
		sd := filepath.Join(*dir, n)
		cmd := exec.Command("unshare", "--user", "--map-root-user", "--net", self, "-child", sd)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			fmt.Fprintf(os.Stderr, "userspace: %s: kube-proxy run failed: %v\n%s", n, err, stderr.String())
			status = 1
			continue
		}
		rules, state, ok := strings.Cut(string(out), stateMarker)
		if !ok {
			fmt.Fprintf(os.Stderr, "userspace: %s: no state in the output\n", n)
			status = 1
			continue
		}
		argLine, _ := scenarioArgs(sd)
		prov := fmt.Sprintf("# Expected userspace-mode rules of golden/%s: iptables-save (filter, nat) of a fresh network\n"+
			"# namespace after the real kube-proxy v1.25.16 userspace proxier (k8s.io/kubernetes v1.25.16\n"+
			"# pkg/proxy/userspace, unmodified; iptables 1.8.9) was fed input.yaml's Services and Endpoints,\n"+
			"# one Service per sync in (namespace, name) order. Proxy ports: kube-proxy ran without\n"+
			"# --proxy-port-range and got the lowest free port from %d up (the proxy socket factory's choice).\n"+
			"# Regenerate: cd conformance/userspace && go run . -update %s\n"+
			"%s: kube-proxy v1.25.16 userspace proxier: go run . -update %s (node facts: %s)\n"+
			"%s: kube-proxy v1.25.16 LoadBalancerRR after that run: per TCP/UDP service port its backends\n"+
			"  (sorted; kube-proxy shuffles them), affinity type and, for ClientIP, TTL\n",
			n, baseFor(sd), n, expectedFile, n, argLine, stateFile)
		if *update {
			if err := os.WriteFile(filepath.Join(sd, stateFile), []byte(state), 0o644); err != nil {
				fmt.Fprintln(os.Stderr, "userspace:", err)
				return 1
			}
			if err := os.WriteFile(filepath.Join(sd, expectedFile), []byte(rules), 0o644); err != nil {
				fmt.Fprintln(os.Stderr, "userspace:", err)
				return 1
			}
			if err := os.WriteFile(filepath.Join(sd, provenanceFile), []byte(prov), 0o644); err != nil {
				fmt.Fprintln(os.Stderr, "userspace:", err)
				return 1
			}
			fmt.Printf("wrote golden/%s/%s\n", n, expectedFile)
			continue
		}
		for f, content := range map[string]string{expectedFile: rules, stateFile: state} {
			old, err := os.ReadFile(filepath.Join(sd, f))
			if err != nil || string(old) != content {
				fmt.Printf("DIFFERS: golden/%s/%s\n", n, f)
				status = 1
			}
		}
	}
	if *check && status == 0 {
		fmt.Printf("all %d scenarios match kube-proxy v1.25.16\n", len(names))
	}
	return status
}

// scenarioArgs returns the flags of args and userspace.args.
func scenarioArgs(dir string) (string, []string) {
	var all []string
	for _, f := range []string{"args", argsFile} {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			l := strings.TrimSpace(sc.Text())
			if l == "" || strings.HasPrefix(l, "#") {
				continue
			}
			all = append(all, l)
		}
	}
	var facts []string
	for _, a := range all {
		for _, k := range []string{"--ip-family=", "--node-ip=", "--node-addresses=", "--proxy-port-range="} {
			if strings.HasPrefix(a, k) {
				facts = append(facts, a)
			}
		}
	}
	return strings.Join(facts, " "), all
}

func settingsFor(dir string) (runSettings, error) {
	_, args := scenarioArgs(dir)
	rs := runSettings{family: "ipv4"}
	for _, a := range args {
		k, v, _ := strings.Cut(a, "=")
		switch k {
		case "--ip-family":
			rs.family = v
		case "--node-ip":
			rs.nodeIP = v
		case "--node-addresses":
			for _, x := range strings.Split(v, ",") {
				if x = strings.TrimSpace(x); x != "" {
					rs.nodeAddresses = append(rs.nodeAddresses, x)
				}
			}
		case "--proxy-port-range":
			rs.proxyPortRange = v
		}
	}
	if rs.nodeIP == "" {
		return rs, fmt.Errorf("%s: no --node-ip", dir)
	}
	// --node-ip may list one IP per family: keep the proxier's.
	var mine string
	for _, x := range strings.Split(rs.nodeIP, ",") {
		isV6 := strings.Contains(x, ":")
		if isV6 == (rs.family == "ipv6") && mine == "" {
			mine = x
		} else {
			rs.nodeAddresses = append(rs.nodeAddresses, x)
		}
	}
	rs.nodeIP = mine
	if rs.nodeIP == "" {
		return rs, fmt.Errorf("%s: no --node-ip of family %s", dir, rs.family)
	}
	return rs, nil
}

func baseFor(dir string) int {
	rs, err := settingsFor(dir)
	if err != nil || rs.proxyPortRange == "" {
		return defaultBase
	}
	pr, err := utilnet.ParsePortRange(rs.proxyPortRange)
	if err != nil || pr.Base == 0 {
		return defaultBase
	}
	return pr.Base
}

func runChild(dir string) int {
	klog.LogToStderr(false)
	klog.SetOutput(new(bytes.Buffer))
	rs, err := settingsFor(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	data, err := os.ReadFile(filepath.Join(dir, "input.yaml"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	objs, err := load(data)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	out, state, err := runOracle(rs, objs, baseFor(dir))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Print(out)
	fmt.Print(stateMarker)
	fmt.Print(state)
	return 0
}
