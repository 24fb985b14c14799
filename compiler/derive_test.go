package compiler

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	discovery "k8s.io/api/discovery/v1"
)

func deployYAML(ns, name string, replicas int, labels, podSpec string) string {
	return fmt.Sprintf(`---
apiVersion: apps/v1
kind: Deployment
metadata: {namespace: %s, name: %s}
spec:
  replicas: %d
  selector: {matchLabels: %s}
  template:
    metadata: {labels: %s}
    spec: %s
`, ns, name, replicas, labels, labels, podSpec)
}

const webPod = `{containers: [{name: web, image: x, ports: [{name: http, containerPort: 8080}, {name: dns, containerPort: 53, protocol: UDP}]}]}`

// slicesOf returns the derived (or given) slices of a Service in the materialized objects.
func slicesOf(m *Materialized, ns, svc string) []*discovery.EndpointSlice {
	var out []*discovery.EndpointSlice
	for _, s := range m.EndpointSlices {
		if s.Namespace == ns && s.Labels[discovery.LabelServiceName] == svc {
			out = append(out, s.EndpointSlice)
		}
	}
	return out
}

// describe is "addressType ports: ip@node[!notready] ..." per slice, sorted.
func describe(slices []*discovery.EndpointSlice) []string {
	var out []string
	for _, s := range slices {
		var ports, eps []string
		for _, p := range s.Ports {
			ports = append(ports, fmt.Sprintf("%s=%d/%s", *p.Name, *p.Port, *p.Protocol))
		}
		for _, e := range s.Endpoints {
			d := e.Addresses[0]
			if e.NodeName != nil {
				d += "@" + *e.NodeName
			}
			if e.Conditions.Ready != nil && !*e.Conditions.Ready {
				d += "!notready"
			}
			if e.Hostname != nil {
				d += "#" + *e.Hostname
			}
			eps = append(eps, d)
		}
		out = append(out, fmt.Sprintf("%s [%s] %d: %s", s.AddressType, strings.Join(ports, ","), len(s.Endpoints), strings.Join(eps, " ")))
	}
	sort.Strings(out)
	return out
}

func nodesOf(slices []*discovery.EndpointSlice) []string {
	var out []string
	for _, s := range slices {
		for _, e := range s.Endpoints {
			if e.NodeName != nil {
				out = append(out, *e.NodeName)
			}
		}
	}
	sort.Strings(out)
	return out
}

func countEndpoints(slices []*discovery.EndpointSlice) int {
	n := 0
	for _, s := range slices {
		n += len(s.Endpoints)
	}
	return n
}

func TestDeriveSelectorsAndPorts(t *testing.T) {
	input := deployYAML("ns", "web", 3, "{app: web, tier: fe}", webPod) +
		deployYAML("other", "web", 2, "{app: web}", webPod) +
		svcYAML("ns", "all", "{selector: {app: web}, ports: [{name: http, port: 80, targetPort: http}, {name: dns, port: 53, protocol: UDP, targetPort: dns}]}") +
		svcYAML("ns", "numeric", "{selector: {app: web, tier: fe}, ports: [{port: 80, targetPort: 9000}]}") +
		svcYAML("ns", "defaulted", "{selector: {app: web}, ports: [{port: 8080}]}") +
		svcYAML("ns", "typo", "{selector: {app: web}, ports: [{name: a, port: 80, targetPort: htpp}]}") +
		svcYAML("ns", "proto", "{selector: {app: web}, ports: [{name: a, port: 80, targetPort: dns}]}") +
		svcYAML("ns", "nomatch", "{selector: {app: wbe}, ports: [{port: 80}]}") +
		svcYAML("ns", "tooselective", "{selector: {app: web, tier: be}, ports: [{port: 80}]}") +
		svcYAML("ns", "noselector", "{ports: [{port: 80}]}") +
		svcYAML("ns", "given", "{selector: {app: web}, ports: [{port: 80}]}") + `---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {namespace: ns, name: given-1, labels: {kubernetes.io/service-name: given}}
addressType: IPv4
endpoints: [{addresses: [192.0.2.1]}]
ports: [{port: 80}]
` + svcYAML("ns", "givenep", "{selector: {app: web}, ports: [{port: 80}]}") + `---
apiVersion: v1
kind: Endpoints
metadata: {namespace: ns, name: givenep}
subsets: [{addresses: [{ip: 192.0.2.2}], ports: [{port: 80}]}]
`
	_, m, notes, err := materializeYAML(t, input, MaterializeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	text := fmt.Sprint(notes)
	check := func(svc string, wantSlices, wantEndpoints int, wantPorts string) {
		t.Helper()
		sl := slicesOf(m, "ns", svc)
		d := describe(sl)
		if len(sl) != wantSlices || countEndpoints(sl) != wantEndpoints || (wantPorts != "" && !strings.Contains(strings.Join(d, "\n"), wantPorts)) {
			t.Errorf("%s: want %d slices, %d endpoints, ports %s; got:\n%s", svc, wantSlices, wantEndpoints, wantPorts, strings.Join(d, "\n"))
		}
	}
	check("all", 1, 3, "[http=8080/TCP,dns=53/UDP]")
	check("numeric", 1, 3, "[=9000/TCP]")
	check("defaulted", 1, 3, "[=8080/TCP]")
	check("typo", 1, 3, "IPv4 [] 3")    // endpoints without a port: kube-proxy gets nothing
	check("proto", 1, 3, "IPv4 [] 3")   // dns is a UDP container port, the service port is TCP
	check("nomatch", 1, 0, "IPv4 [] 0") // the controller's placeholder slice
	check("tooselective", 1, 0, "")     // selector is a subset match: tier=be matches nothing
	check("noselector", 0, 0, "")       // selector-less: nothing derived
	check("given", 1, 1, "192.0.2.1")   // given slices are kept as they are
	check("givenep", 0, 0, "")          // given Endpoints: mirrored, not derived
	if got := len(slicesOf(m, "other", "all")); got != 0 {
		t.Errorf("slices in another namespace: %d", got)
	}
	for _, want := range []string{
		`Service ns/nomatch: selector app=wbe matches no pod`,
		`Service ns/typo: port "a" (80/TCP): targetPort "htpp" names no TCP container port of Deployment ns/web`,
		`Service ns/proto: port "a" (80/TCP): targetPort "dns" names no TCP container port`,
		`Service ns/all: endpoints derived from Deployment ns/web (3 pods)`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("notes lack %q:\n%s", want, text)
		}
	}
}

func TestDeriveWorkloadKinds(t *testing.T) {
	input := deployYAML("ns", "d0", 0, "{app: d0}", webPod) +
		deployYAML("ns", "d5", 5, "{app: d5}", webPod) + `---
apiVersion: apps/v1
kind: Deployment
metadata: {namespace: ns, name: d1}
spec:
  selector: {matchLabels: {app: d1}}
  template:
    metadata: {labels: {app: d1}}
    spec: ` + webPod + `
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {namespace: ns, name: db}
spec:
  serviceName: db-h
  replicas: 2
  ordinals: {start: 5}
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: ` + webPod + `
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {namespace: ns, name: ds}
spec:
  selector: {matchLabels: {app: ds}}
  template:
    metadata: {labels: {app: ds}}
    spec: ` + webPod + `
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {namespace: ns, name: ds-b}
spec:
  selector: {matchLabels: {app: ds-b}}
  template:
    metadata: {labels: {app: ds-b}}
    spec: {nodeSelector: {topology.kubernetes.io/zone: zone-b}, containers: [{name: c, image: x}]}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {namespace: ns, name: hostnet}
spec:
  selector: {matchLabels: {app: hostnet}}
  template:
    metadata: {labels: {app: hostnet}}
    spec: {hostNetwork: true, containers: [{name: c, image: x, ports: [{name: m, containerPort: 9100}]}]}
---
apiVersion: v1
kind: ReplicationController
metadata: {namespace: ns, name: rc}
spec:
  replicas: 2
  template:
    metadata: {labels: {app: rc}}
    spec: ` + webPod + `
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {namespace: ns, name: rs}
spec:
  replicas: 4
  selector: {matchLabels: {app: rs}}
  template:
    metadata: {labels: {app: rs}}
    spec: ` + webPod + `
---
apiVersion: batch/v1
kind: Job
metadata: {namespace: ns, name: job}
spec:
  parallelism: 3
  completions: 2
  template:
    metadata: {labels: {app: job}}
    spec: ` + webPod + `
---
apiVersion: batch/v1
kind: CronJob
metadata: {namespace: ns, name: cron}
spec:
  schedule: "* * * * *"
  jobTemplate:
    spec:
      template:
        metadata: {labels: {app: cron}}
        spec: ` + webPod + `
---
apiVersion: batch/v1
kind: CronJob
metadata: {namespace: ns, name: cron-off}
spec:
  schedule: "* * * * *"
  suspend: true
  jobTemplate:
    spec:
      template:
        metadata: {labels: {app: cron-off}}
        spec: ` + webPod + `
---
apiVersion: v1
kind: Pod
metadata: {namespace: ns, name: pinned, labels: {app: pod}}
spec: {nodeName: node-3, containers: [{name: c, image: x}]}
---
apiVersion: v1
kind: Pod
metadata: {namespace: ns, name: unready, labels: {app: pod}}
spec: {nodeName: node-2, containers: [{name: c, image: x}]}
status: {conditions: [{type: Ready, status: "False"}], podIP: 10.244.99.99}
---
apiVersion: v1
kind: Pod
metadata: {namespace: ns, name: done, labels: {app: pod}}
spec: {containers: [{name: c, image: x}]}
status: {phase: Succeeded}
---
apiVersion: v1
kind: Pod
metadata: {namespace: ns, name: lost, labels: {app: pod}}
spec: {nodeName: node-9, containers: [{name: c, image: x}]}
`
	for _, app := range []string{"d0", "d1", "d5", "ds", "ds-b", "rc", "rs", "job", "cron", "cron-off", "pod"} {
		input += svcYAML("ns", app, fmt.Sprintf("{selector: {app: %s}, ports: [{port: 80}]}", app))
	}
	input += svcYAML("ns", "pod-all", "{publishNotReadyAddresses: true, selector: {app: pod}, ports: [{port: 80}]}")
	input += svcYAML("ns", "db-h", "{clusterIP: None, selector: {app: db}, ports: [{port: 80}]}")
	input += svcYAML("ns", "db", "{selector: {app: db}, ports: [{port: 80}]}")
	input += svcYAML("ns", "hostnet", "{selector: {app: hostnet}, ports: [{port: 9100, targetPort: m}]}")

	in, m, notes, err := materializeYAML(t, input, MaterializeOptions{NodeName: "node-1", NodeIPs: []string{"192.168.0.2"}})
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{"d0": 0, "d1": 1, "d5": 5, "ds": 3, "ds-b": 1, "rc": 2, "rs": 4, "job": 2, "cron": 1, "cron-off": 0, "pod": 2, "pod-all": 2, "db": 2, "db-h": 2, "hostnet": 3}
	for svc, want := range counts {
		if got := countEndpoints(slicesOf(m, "ns", svc)); got != want {
			t.Errorf("%s: %d endpoints, want %d: %v", svc, got, want, describe(slicesOf(m, "ns", svc)))
		}
	}
	// Replicas spread over the nodes; a DaemonSet runs on each, or those its nodeSelector picks.
	if got := nodesOf(slicesOf(m, "ns", "d5")); fmt.Sprint(got) != "[node-1 node-1 node-2 node-2 node-3]" && fmt.Sprint(got) != "[node-1 node-2 node-2 node-3 node-3]" && fmt.Sprint(got) != "[node-1 node-1 node-2 node-3 node-3]" {
		t.Errorf("d5 not spread: %v", got)
	}
	if got := nodesOf(slicesOf(m, "ns", "ds")); fmt.Sprint(got) != "[node-1 node-2 node-3]" {
		t.Errorf("ds nodes: %v", got)
	}
	if got := nodesOf(slicesOf(m, "ns", "ds-b")); fmt.Sprint(got) != "[node-2]" {
		t.Errorf("ds-b nodes: %v", got)
	}
	// StatefulSet: ordinals from .spec.ordinals.start, hostnames only for the governing Service.
	hd := strings.Join(describe(slicesOf(m, "ns", "db-h")), "\n")
	if !strings.Contains(hd, "#db-5") || !strings.Contains(hd, "#db-6") {
		t.Errorf("db-h hostnames: %s", hd)
	}
	if d := strings.Join(describe(slicesOf(m, "ns", "db")), "\n"); strings.Contains(d, "#") {
		t.Errorf("db must not carry hostnames: %s", d)
	}
	for _, s := range slicesOf(m, "ns", "db-h") {
		if _, ok := s.Labels[labelHeadless]; !ok {
			t.Errorf("headless slice %s lacks %s", s.Name, labelHeadless)
		}
	}
	for _, s := range in.EndpointSlices {
		if s.Labels[discovery.LabelServiceName] == "db-h" {
			t.Errorf("headless slices must not reach the plan")
		}
	}
	// hostNetwork: the node addresses (node-1's is --node-ip).
	hn := strings.Join(describe(slicesOf(m, "ns", "hostnet")), "\n")
	for _, want := range []string{"192.168.0.2@node-1", "172.18.0.3@node-2", "172.18.0.4@node-3", "[=9100/TCP]"} {
		if !strings.Contains(hn, want) {
			t.Errorf("hostnet lacks %s: %s", want, hn)
		}
	}
	// Pods: the unready one only with publishNotReadyAddresses; written pod IP kept; finished
	// and node-less pods left out.
	if d := strings.Join(describe(slicesOf(m, "ns", "pod")), "\n"); strings.Contains(d, "10.244.99.99") && !strings.Contains(d, "!notready") {
		t.Errorf("pod: %s", d)
	}
	pa := strings.Join(describe(slicesOf(m, "ns", "pod-all")), "\n")
	if !strings.Contains(pa, "10.244.99.99@node-2") || strings.Contains(pa, "!notready") {
		t.Errorf("pod-all (publishNotReadyAddresses: ready): %s", pa)
	}
	for _, s := range slicesOf(m, "ns", "pod") {
		for _, e := range s.Endpoints {
			if e.Addresses[0] == "10.244.99.99" && (*e.Conditions.Ready || *e.Conditions.Serving) {
				t.Errorf("unready pod is ready")
			}
		}
	}
	text := fmt.Sprint(notes)
	for _, want := range []string{`Pod ns/done: phase Succeeded`, `Pod ns/lost: nodeName "node-9" is not a node of the cluster`} {
		if !strings.Contains(text, want) {
			t.Errorf("notes lack %q: %s", want, text)
		}
	}
	// Assumed nodes are added (as Node objects) for the plan.
	if len(in.Nodes) != 3 || in.Nodes[0].Name != "node-1" || in.Nodes[0].Labels[labelTopologyZone] != "zone-a" {
		t.Errorf("assumed nodes: %v", in.Nodes)
	}
}

func TestDeriveStableAddressesAndSpread(t *testing.T) {
	base := deployYAML("ns", "web", 3, "{app: web}", webPod) + svcYAML("ns", "web", "{selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}")
	_, m1, _, err := materializeYAML(t, base, MaterializeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	more := deployYAML("ns", "api", 50, "{app: api}", webPod) + deployYAML("aaa", "x", 20, "{app: x}", webPod) + base
	_, m2, _, err := materializeYAML(t, more, MaterializeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a, b := describe(slicesOf(m1, "ns", "web")), describe(slicesOf(m2, "ns", "web"))
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("other workloads moved web's pods:\n%v\n%v", a, b)
	}
	// Three replicas on three nodes land on three different nodes.
	if got := nodesOf(slicesOf(m1, "ns", "web")); fmt.Sprint(got) != "[node-1 node-2 node-3]" {
		t.Errorf("spread: %v", got)
	}
	// --nodes and --cluster-cidr are honoured.
	_, m3, _, err := materializeYAML(t, base, MaterializeOptions{Nodes: []string{"a", "b"}, PodCIDRs: []string{"10.1.0.0/24"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range slicesOf(m3, "ns", "web") {
		for _, e := range s.Endpoints {
			if !CIDRContains("10.1.0.0/24", e.Addresses[0]) || (*e.NodeName != "a" && *e.NodeName != "b") || e.Zone != nil {
				t.Errorf("endpoint %s on %s zone %v", e.Addresses[0], *e.NodeName, e.Zone)
			}
		}
	}
}

func TestDeriveSlicingFamiliesAndHints(t *testing.T) {
	input := deployYAML("ns", "big", 250, "{app: big}", webPod) +
		svcYAML("ns", "big", "{selector: {app: big}, ports: [{port: 80, targetPort: 8080}]}") +
		svcYAML("ns", "dual", "{ipFamilyPolicy: RequireDualStack, selector: {app: big}, ports: [{port: 80, targetPort: 8080}]}") +
		deployYAML("ns", "small", 3, "{app: small}", webPod) +
		svcYAML("ns", "close", "{trafficDistribution: PreferClose, selector: {app: small}, ports: [{port: 80, targetPort: 8080}]}") +
		svcYAML("ns", "samenode", "{trafficDistribution: PreferSameNode, selector: {app: small}, ports: [{port: 80, targetPort: 8080}]}") +
		svcYAML("ns", "auto", "{selector: {app: small}, ports: [{port: 80, targetPort: 8080}]}")
	input = strings.Replace(input, "metadata: {namespace: ns, name: auto}", "metadata: {namespace: ns, name: auto, annotations: {service.kubernetes.io/topology-mode: Auto}}", 1)
	_, m, notes, err := materializeYAML(t, input, MaterializeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var sizes []int
	for _, s := range slicesOf(m, "ns", "big") {
		sizes = append(sizes, len(s.Endpoints))
	}
	if fmt.Sprint(sizes) != "[100 100 50]" {
		t.Errorf("big: slice sizes %v, want [100 100 50]", sizes)
	}
	fams := map[discovery.AddressType]int{}
	for _, s := range slicesOf(m, "ns", "dual") {
		fams[s.AddressType] += len(s.Endpoints)
	}
	if fams[discovery.AddressTypeIPv4] != 250 || fams[discovery.AddressTypeIPv6] != 250 {
		t.Errorf("dual: %v", fams)
	}
	for _, tc := range []struct {
		svc          string
		zone, nodeOK bool
	}{{"close", true, false}, {"samenode", true, true}, {"auto", false, false}} {
		for _, s := range slicesOf(m, "ns", tc.svc) {
			for _, e := range s.Endpoints {
				hasZone := e.Hints != nil && len(e.Hints.ForZones) == 1 && e.Zone != nil && e.Hints.ForZones[0].Name == *e.Zone
				hasNode := e.Hints != nil && len(e.Hints.ForNodes) == 1 && e.Hints.ForNodes[0].Name == *e.NodeName
				if hasZone != tc.zone || hasNode != tc.nodeOK {
					t.Errorf("%s: hints %+v", tc.svc, e.Hints)
				}
			}
		}
	}
	if !strings.Contains(fmt.Sprint(notes), "Service ns/auto: topology-mode Auto") {
		t.Errorf("no note about topology-mode Auto: %v", notes)
	}
}

func TestDeriveInvalidWorkloads(t *testing.T) {
	input := `---
apiVersion: apps/v1
kind: Deployment
metadata: {namespace: ns, name: nosel}
spec:
  template:
    metadata: {labels: {app: x}}
    spec: ` + webPod + `
---
apiVersion: apps/v1
kind: Deployment
metadata: {namespace: ns, name: mismatch}
spec:
  selector: {matchLabels: {app: yy}}
  template:
    metadata: {labels: {app: x}}
    spec: ` + webPod + `
---
apiVersion: apps/v1
kind: Deployment
metadata: {namespace: ns, name: badport}
spec:
  selector: {matchLabels: {app: x}}
  template:
    metadata: {labels: {app: x}}
    spec: {containers: [{name: c, image: x, ports: [{name: "Not_A_Port_Name", containerPort: 70000}]}]}
` + deployYAML("ns", "ok", 1, "{app: x}", webPod) + svcYAML("ns", "x", "{selector: {app: x}, ports: [{port: 80, targetPort: http}]}")
	_, m, notes, err := materializeYAML(t, input, MaterializeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := countEndpoints(slicesOf(m, "ns", "x")); n != 1 {
		t.Errorf("want only the valid Deployment's pod, got %d endpoints", n)
	}
	text := fmt.Sprint(notes)
	for _, want := range []string{
		"Deployment ns/nosel: invalid, the API server would reject it (no pods assumed): spec.selector: required",
		"Deployment ns/mismatch: invalid, the API server would reject it (no pods assumed): spec.template.metadata.labels: `selector` does not match template `labels`",
		"Deployment ns/badport: invalid",
		"containerPort: invalid value 70000",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("notes lack %q:\n%s", want, text)
		}
	}
	// A type error in a workload is an input error, like in any object.
	_, err = Load(LoadOptions{Paths: []string{"-"}, Stdin: strings.NewReader("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {replicas: three}\n")})
	if err == nil || !strings.Contains(err.Error(), "Deployment d: field spec.replicas") {
		t.Errorf("want a load error naming the Deployment, got %v", err)
	}
}

func TestParseNodes(t *testing.T) {
	got, err := ParseNodes([]string{"a", "b=zone-1"})
	if err != nil || fmt.Sprint(got) != "[[a ] [b zone-1]]" {
		t.Errorf("got %v %v", got, err)
	}
	for _, bad := range [][]string{{"A_B"}, {"a", "a"}, {"a=bad zone"}} {
		if _, err := ParseNodes(bad); err == nil {
			t.Errorf("%v: want an error", bad)
		}
	}
}

func TestDeriveBoundsPods(t *testing.T) {
	input := deployYAML("ns", "huge", 2147483647, "{app: x}", webPod) + svcYAML("ns", "x", "{selector: {app: x}, ports: [{port: 80}]}")
	_, _, _, err := materializeYAML(t, input, MaterializeOptions{})
	if err == nil || !strings.Contains(err.Error(), "Deployment ns/huge: the workloads would run more than 200000 pods") {
		t.Errorf("want the pod limit error, got %v", err)
	}
}
