package check

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	netutils "k8s.io/utils/net"

	"github.com/svc2rules/svc2rules/compiler"
)

// Finding is one result of check.
type Finding struct {
	Rule     string
	Severity Severity
	// File and Line locate the object (Line 0: unknown); Field, when set,
	// is the offending field, and Line is then its line where it can be found.
	File string
	Line int
	// Kind, Namespace and Name identify the object ("" for a whole document).
	Kind, Namespace, Name string
	Field                 string
	Message               string
}

// Object is "Kind ns/name" (quoted when not printable).
func (f Finding) Object() string {
	return compiler.Finding{Kind: f.Kind, Namespace: f.Namespace, Name: f.Name}.Object()
}

// ObjectRef is one object that was checked (JUnit lists one test case each).
type ObjectRef struct {
	Kind, Namespace, Name string
	File                  string
	Line                  int

	src compiler.Source
}

// Object is "Kind ns/name".
func (o ObjectRef) Object() string {
	return compiler.Finding{Kind: o.Kind, Namespace: o.Namespace, Name: o.Name}.Object()
}

// Report is the result of Run.
type Report struct {
	Findings []Finding
	Objects  []ObjectRef
	Files    []string
}

// Count returns the number of findings of a severity.
func (r *Report) Count(s Severity) int {
	n := 0
	for _, f := range r.Findings {
		if f.Severity == s {
			n++
		}
	}
	return n
}

// PortRange is --service-node-port-range.
type PortRange struct{ Min, Max int32 }

// DefaultPortRange is kube-apiserver's default --service-node-port-range.
var DefaultPortRange = PortRange{30000, 32767}

// ParsePortRange reads "30000-32767" or "30000+2767" as kube-apiserver does.
func ParsePortRange(s string) (PortRange, error) {
	s = strings.TrimSpace(s)
	bad := fmt.Errorf("invalid port range %q: want MIN-MAX or BASE+SIZE", s)
	var a, b string
	var plus bool
	if i := strings.IndexAny(s, "-+"); i > 0 {
		a, b, plus = s[:i], s[i+1:], s[i] == '+'
	} else {
		return PortRange{}, bad
	}
	lo, err1 := strconv.Atoi(strings.TrimSpace(a))
	n, err2 := strconv.Atoi(strings.TrimSpace(b))
	if err1 != nil || err2 != nil {
		return PortRange{}, bad
	}
	hi := n
	if plus {
		hi = lo + n
	}
	if lo < 1 || hi > 65535 || hi < lo {
		return PortRange{}, bad
	}
	return PortRange{int32(lo), int32(hi)}, nil
}

func (r PortRange) String() string { return fmt.Sprintf("%d-%d", r.Min, r.Max) }

// Options say what to check and for which node and cluster.
type Options struct {
	Files     []string
	Recursive bool
	Stdin     io.Reader
	// MaxDocuments bounds the documents read (0: compiler.DefaultMaxDocuments).
	MaxDocuments int

	// NodeName, when set, enables the per-node findings (local endpoints).
	NodeName string
	Zone     string
	NodeIPs  []string
	// ServiceCIDRs are --service-cidrs (ServiceCIDR objects are added).
	ServiceCIDRs  []string
	NodePortRange PortRange
	FeatureGates  string

	// What compile assumes about the cluster (see compile's flags of the
	// same names): NoAllocate takes the input as a snapshot; otherwise
	// missing ClusterIPs and node ports are allocated (NodePortRangeFlag)
	// and EndpointSlices derived from the input's workloads on Nodes with
	// pod networks PodCIDRs.
	NoAllocate        bool
	NodePortRangeFlag string
	Nodes             []string
	PodCIDRs          []string
}

// Run loads, validates and cross-checks the manifests. An error means check
// could not run (missing file, a limit exceeded, a bad option); problems of
// the manifests are findings.
func Run(o Options) (*Report, error) {
	if o.NodePortRange == (PortRange{}) {
		o.NodePortRange = DefaultPortRange
	}
	for _, c := range o.ServiceCIDRs {
		if _, _, err := netutils.ParseCIDRSloppy(c); err != nil {
			return nil, fmt.Errorf("--service-cidrs: invalid CIDR %q", c)
		}
	}
	if _, err := compiler.ParseFeatureGates(o.FeatureGates); err != nil {
		return nil, fmt.Errorf("--feature-gates: %v", err)
	}
	c := &checker{opts: o, locators: map[string]*compiler.Locator{}, data: map[string][]byte{}}
	in, loadFindings, err := compiler.LoadAll(compiler.LoadOptions{Paths: o.Files, Recursive: o.Recursive, Stdin: o.Stdin, MaxDocuments: o.MaxDocuments}, func(file string, data []byte) {
		c.files = append(c.files, file)
		c.data[file] = data
	})
	if err != nil {
		return nil, err
	}
	for _, f := range loadFindings {
		c.addCompiler(f)
	}
	c.run(in)
	sortFindings(c.findings)
	return &Report{Findings: c.findings, Objects: c.objects, Files: c.files}, nil
}

type checker struct {
	opts     Options
	findings []Finding
	objects  []ObjectRef
	files    []string
	data     map[string][]byte
	locators map[string]*compiler.Locator
	seen     map[string]bool
	// externalNames are the ExternalName Services (ns/name).
	externalNames map[string]bool
	// noPods are the Services whose selector matches no pod of the input's
	// workloads (said once, by selector-matches-no-pod).
	noPods map[string]bool
	// workloads: endpoints were derived from the input's workloads.
	workloads bool
}

// line finds the line of a field of an object (the object's line if unknown).
func (c *checker) line(src compiler.Source, field string) int {
	if field == "" {
		return src.Line
	}
	l, ok := c.locators[src.File]
	if !ok {
		if d, ok := c.data[src.File]; ok {
			l = compiler.NewLocator(src.File, d)
		}
		c.locators[src.File] = l
	}
	return l.Line(src, field)
}

func (c *checker) add(f Finding) {
	if c.seen == nil {
		c.seen = map[string]bool{}
	}
	key := fmt.Sprintf("%s|%s|%d|%s|%s|%s|%s|%s", f.Rule, f.File, f.Line, f.Kind, f.Namespace, f.Name, f.Field, f.Message)
	if c.seen[key] {
		return
	}
	c.seen[key] = true
	if r, ok := ruleByID(f.Rule); ok {
		f.Severity = r.Severity
	}
	c.findings = append(c.findings, f)
}

// at builds a finding about an object at a field.
func (c *checker) at(rule string, src compiler.Source, kind, ns, name, field, format string, args ...any) {
	c.add(Finding{Rule: rule, File: src.File, Line: c.line(src, field), Kind: kind, Namespace: ns, Name: name, Field: field, Message: fmt.Sprintf(format, args...)})
}

func (c *checker) addCompiler(f compiler.Finding) {
	c.add(Finding{Rule: f.Code, File: f.Source.File, Line: c.line(f.Source, f.Field), Kind: f.Kind, Namespace: f.Namespace, Name: f.Name, Field: f.Field, Message: f.Message})
}

func sortFindings(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Rule != b.Rule {
			return a.Rule < b.Rule
		}
		if a.Object() != b.Object() {
			return a.Object() < b.Object()
		}
		if a.Field != b.Field {
			return a.Field < b.Field
		}
		return a.Message < b.Message
	})
}

func nsName(ns, name string) string { return ns + "/" + name }

func (c *checker) run(in *compiler.Inputs) {
	// Every object read, for JUnit, and every Service name (valid or not),
	// so that an invalid Service does not also make its slices orphans.
	allServices := map[string]bool{}
	for _, s := range in.Services {
		ns := s.Namespace
		if ns == "" {
			ns = "default"
		}
		allServices[nsName(ns, s.Name)] = true
		c.objects = append(c.objects, ObjectRef{"Service", ns, s.Name, s.Source.File, s.Source.Line, s.Source})
	}
	for _, e := range in.Endpoints {
		c.objects = append(c.objects, ObjectRef{"Endpoints", orDefault(e.Namespace), e.Name, e.Source.File, e.Source.Line, e.Source})
	}
	for _, e := range in.EndpointSlices {
		c.objects = append(c.objects, ObjectRef{"EndpointSlice", orDefault(e.Namespace), e.Name, e.Source.File, e.Source.Line, e.Source})
	}
	for _, n := range in.Nodes {
		c.objects = append(c.objects, ObjectRef{"Node", "", n.Name, n.Source.File, n.Source.Line, n.Source})
	}
	for _, s := range in.ServiceCIDRs {
		c.objects = append(c.objects, ObjectRef{"ServiceCIDR", "", s.Name, s.Source.File, s.Source.Line, s.Source})
	}

	c.duplicates(in)
	for _, f := range compiler.ValidateAll(in) {
		c.addCompiler(f)
	}
	services := append([]*compiler.ServiceObject(nil), in.Services...)
	c.externalNames = map[string]bool{}
	for _, s := range services {
		if s.Spec.Type == v1.ServiceTypeExternalName {
			c.externalNames[nsName(s.Namespace, s.Name)] = true
		}
	}
	endpoints := append([]*compiler.EndpointsObject(nil), in.Endpoints...)
	// The values as written, before anything is allocated.
	c.allocations(services, in.ServiceCIDRs)

	// What the cluster makes of them: mirroring, informer filters, and
	// (unless --no-allocate) allocation and EndpointSlices derived from the
	// input's workloads, as compile does.
	mopts := compiler.MaterializeOptions{
		NoAllocate:    c.opts.NoAllocate,
		ServiceCIDRs:  c.opts.ServiceCIDRs,
		NodePortRange: c.opts.NodePortRangeFlag,
		Nodes:         c.opts.Nodes,
		PodCIDRs:      c.opts.PodCIDRs,
		NodeName:      c.opts.NodeName,
		NodeIPs:       c.opts.NodeIPs,
		Zone:          c.opts.Zone,
	}
	snapshot := *in
	snapshot.Services = append([]*compiler.ServiceObject(nil), in.Services...)
	snapshot.EndpointSlices = append([]*compiler.EndpointSliceObject(nil), in.EndpointSlices...)
	snapshot.Nodes = append([]*compiler.NodeObject(nil), in.Nodes...)
	notes, _, err := compiler.Materialize(in, mopts)
	if err != nil && !mopts.NoAllocate {
		// Allocation or derivation failed (compile would fail the same
		// way): report why, then look at the input as a snapshot.
		c.materializeError(err)
		*in = snapshot
		mopts.NoAllocate = true
		notes, _, err = compiler.Materialize(in, mopts)
	}
	c.notes(notes)
	if err != nil {
		// ValidateAll removed every object Normalize would refuse; what is
		// left is a conflict between objects (e.g. two pods with one IP).
		f := Finding{Rule: "invalid-value", Message: err.Error()}
		var ie *compiler.InputError
		if errors.As(err, &ie) {
			f.File, f.Line, f.Message = ie.Source.File, ie.Source.Line, ie.Err.Error()
			f.Kind, f.Name, _ = strings.Cut(ie.Object, " ")
		}
		c.add(f)
		return
	}
	c.workloads = len(in.Workloads) > 0 && !c.opts.NoAllocate
	c.orphans(allServices, endpoints, in.EndpointSlices)
	c.endpointFindings(in, services)
}

// materializeError reports why allocation or endpoint derivation failed,
// unless an allocation finding already says it for the object.
func (c *checker) materializeError(err error) {
	f := Finding{Rule: "allocation-failed", Message: err.Error()}
	var ie *compiler.InputError
	if errors.As(err, &ie) {
		f.File, f.Line, f.Message = ie.Source.File, ie.Source.Line, ie.Err.Error()
		var rest string
		f.Kind, rest, _ = strings.Cut(ie.Object, " ")
		f.Namespace, f.Name, _ = strings.Cut(rest, "/")
	}
	for _, g := range c.findings {
		switch g.Rule {
		case "duplicate-cluster-ip", "duplicate-node-port", "node-port-out-of-range", "cluster-ip-out-of-range", "duplicate-object":
			if g.Kind == f.Kind && g.Namespace == f.Namespace && g.Name == f.Name {
				return
			}
		}
	}
	c.add(f)
}

// duplicates: two objects of the same kind, namespace and name. kubectl
// apply would make the later replace the earlier; compile does the same.
func (c *checker) duplicates(in *compiler.Inputs) {
	first := map[string]ObjectRef{}
	for _, o := range c.objects {
		if o.Name == "" {
			continue
		}
		k := o.Kind + "|" + o.Namespace + "|" + o.Name
		prev, dup := first[k]
		if !dup {
			first[k] = o
			continue
		}
		loc := prev.File
		if prev.Line > 0 {
			loc = fmt.Sprintf("%s:%d", loc, prev.Line)
		}
		c.at("duplicate-object", o.src, o.Kind, o.Namespace, o.Name, "metadata.name", "also defined at %s: in a cluster the later definition replaces the earlier one (and so does compile)", loc)
	}
}

func orDefault(ns string) string {
	if ns == "" {
		return "default"
	}
	return ns
}

// notes turns the notes of Materialize (Normalize, allocation, endpoint
// derivation) and Build into findings.
func (c *checker) notes(notes []compiler.Note) {
	if c.noPods == nil {
		c.noPods = map[string]bool{}
	}
	for _, n := range notes {
		f := Finding{Rule: "note", File: n.Source.File, Line: n.Source.Line, Message: n.Message}
		if n.Object != "" {
			var rest string
			f.Kind, rest, _ = strings.Cut(n.Object, " ")
			if i := strings.Index(rest, "/"); i >= 0 {
				f.Namespace, f.Name = rest[:i], rest[i+1:]
			} else {
				f.Name = rest
			}
		}
		msg := n.Message
		switch {
		case n.Object == "" && strings.HasPrefix(msg, "skipped"):
			f.Rule = "kind-skipped"
		case strings.HasPrefix(msg, "ignored: redefined at"):
			continue // duplicate-object says it
		case f.Kind == "Service" && strings.HasPrefix(msg, "ignored:"), f.Kind == "Service" && strings.HasPrefix(msg, "has no clusterIP"):
			if c.externalNames[nsName(f.Namespace, f.Name)] {
				continue // said as "type ExternalName"
			}
			f.Rule = "service-ignored"
		case f.Kind == "EndpointSlice" && strings.Contains(msg, "label"):
			continue // endpointslice-without-service-label says it
		case f.Kind == "Service" && strings.Contains(msg, "matches no pod"):
			f.Rule, f.Field = "selector-matches-no-pod", "spec.selector"
			c.noPods[nsName(f.Namespace, f.Name)] = true
		case f.Kind == "Service" && strings.Contains(msg, "names no") && strings.Contains(msg, "container port"):
			f.Rule = "target-port-not-found"
		case strings.HasPrefix(msg, "invalid, the API server would reject it"):
			f.Rule = "invalid-workload"
		case strings.Contains(msg, "Pending") || strings.Contains(msg, "is not a node of the cluster"):
			f.Rule = "workload-not-scheduled"
		case strings.HasPrefix(msg, "allocated ") || strings.HasPrefix(msg, "endpoints derived from"):
			f.Rule = "assumed"
		}
		if f.Field != "" && n.Source.File != "" {
			f.Line = c.line(n.Source, f.Field)
		}
		c.add(f)
	}
}

// allocations: duplicate ClusterIPs and node ports, ports out of range,
// ClusterIPs out of the service CIDRs.
func (c *checker) allocations(services []*compiler.ServiceObject, cidrObjs []*compiler.ServiceCIDRObject) {
	cidrs := append([]string(nil), c.opts.ServiceCIDRs...)
	for _, o := range cidrObjs {
		cidrs = append(cidrs, o.CIDRs...)
	}
	hasFamily := map[bool]bool{}
	for _, cidr := range cidrs {
		hasFamily[netutils.IsIPv6CIDRString(cidr)] = true
	}
	type owner struct {
		s     *compiler.ServiceObject
		field string
	}
	ips := map[string]owner{}
	ports := map[string]owner{}
	r := c.opts.NodePortRange
	where := func(o owner) string {
		loc := o.s.Source.File
		if l := c.line(o.s.Source, o.field); l > 0 {
			loc = fmt.Sprintf("%s:%d", loc, l)
		}
		return fmt.Sprintf("Service %s/%s (%s)", o.s.Namespace, o.s.Name, loc)
	}
	for _, s := range services {
		spec := &s.Spec
		if spec.Type == v1.ServiceTypeExternalName {
			c.at("service-ignored", s.Source, "Service", s.Namespace, s.Name, "spec.type", "type ExternalName: kube-proxy writes no rules for it")
			continue
		}
		for i, ip := range spec.ClusterIPs {
			if ip == v1.ClusterIPNone {
				continue
			}
			field := fmt.Sprintf("spec.clusterIPs[%d]", i)
			if i == 0 {
				field = "spec.clusterIP"
			}
			parsed := netutils.ParseIPSloppy(ip)
			if parsed == nil {
				continue
			}
			canon := parsed.String()
			if prev, dup := ips[canon]; dup && sameObject(prev.s, s) {
				// duplicate-object says it
			} else if dup {
				c.at("duplicate-cluster-ip", s.Source, "Service", s.Namespace, s.Name, field, "ClusterIP %s is already used by %s", canon, where(prev))
			} else {
				ips[canon] = owner{s, field}
			}
			v6 := parsed.To4() == nil
			if hasFamily[v6] {
				in := false
				for _, cidr := range cidrs {
					if compiler.CIDRContains(cidr, canon) {
						in = true
						break
					}
				}
				if !in {
					c.at("cluster-ip-out-of-range", s.Source, "Service", s.Namespace, s.Name, field, "ClusterIP %s is in none of the service CIDRs %s", canon, strings.Join(familyCIDRs(cidrs, v6), ", "))
				}
			}
		}
		for i, p := range spec.Ports {
			if p.NodePort == 0 {
				continue
			}
			field := fmt.Sprintf("spec.ports[%d].nodePort", i)
			if p.NodePort < r.Min || p.NodePort > r.Max {
				c.at("node-port-out-of-range", s.Source, "Service", s.Namespace, s.Name, field, "nodePort %d is outside the node port range %s (--service-node-port-range)", p.NodePort, r)
			}
			key := fmt.Sprintf("%d/%s", p.NodePort, p.Protocol)
			if prev, dup := ports[key]; dup && prev.s != s && !sameObject(prev.s, s) {
				c.at("duplicate-node-port", s.Source, "Service", s.Namespace, s.Name, field, "nodePort %s is already used by %s", key, where(prev))
			} else if !dup {
				ports[key] = owner{s, field}
			}
		}
		if hc := spec.HealthCheckNodePort; hc != 0 {
			field := "spec.healthCheckNodePort"
			if hc < r.Min || hc > r.Max {
				c.at("node-port-out-of-range", s.Source, "Service", s.Namespace, s.Name, field, "healthCheckNodePort %d is outside the node port range %s (--service-node-port-range)", hc, r)
			}
			key := fmt.Sprintf("%d/%s", hc, v1.ProtocolTCP)
			if prev, dup := ports[key]; dup && sameObject(prev.s, s) && prev.field == field {
				// duplicate-object says it
			} else if dup {
				c.at("duplicate-node-port", s.Source, "Service", s.Namespace, s.Name, field, "healthCheckNodePort %d is already used as a TCP node port by %s", hc, where(prev))
			} else {
				ports[key] = owner{s, field}
			}
		}
	}
}

func sameObject(a, b *compiler.ServiceObject) bool {
	return a.Namespace == b.Namespace && a.Name == b.Name
}

func familyCIDRs(cidrs []string, v6 bool) []string {
	var out []string
	seen := map[string]bool{}
	for _, c := range cidrs {
		if netutils.IsIPv6CIDRString(c) == v6 && !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	sort.Strings(out)
	return out
}

// orphans: Endpoints and EndpointSlices whose Service is not in the input,
// and slices without the service-name label.
func (c *checker) orphans(allServices map[string]bool, endpoints []*compiler.EndpointsObject, slices []*compiler.EndpointSliceObject) {
	for _, e := range endpoints {
		if !allServices[nsName(e.Namespace, e.Name)] {
			c.at("endpoints-without-service", e.Source, "Endpoints", e.Namespace, e.Name, "metadata.name", "no Service %s/%s in the input: kube-proxy never uses these endpoints", e.Namespace, e.Name)
		}
	}
	for _, s := range slices {
		if s.Mirrored {
			continue
		}
		svc := s.Labels[discovery.LabelServiceName]
		if svc == "" {
			c.at("endpointslice-without-service-label", s.Source, "EndpointSlice", s.Namespace, s.Name, "metadata.labels", "no %s label: kube-proxy ignores this slice", discovery.LabelServiceName)
			continue
		}
		if !allServices[nsName(s.Namespace, svc)] {
			c.at("endpoints-without-service", s.Source, "EndpointSlice", s.Namespace, s.Name, "metadata.labels["+discovery.LabelServiceName+"]", "no Service %s/%s in the input: kube-proxy never uses this slice", s.Namespace, svc)
		}
	}
}

// sliceInfo is what the input holds for one Service and family.
type sliceInfo struct {
	any   bool
	ports map[string]bool // "name/PROTO"
}

// endpointFindings builds the plan of every family the Services use and
// reports ports without endpoints, without ready or local endpoints, and
// topology hints kube-proxy ignores.
func (c *checker) endpointFindings(in *compiler.Inputs, services []*compiler.ServiceObject) {
	byName := map[string]*compiler.ServiceObject{}
	for _, s := range services {
		byName[nsName(s.Namespace, s.Name)] = s
	}
	// Slices per Service and family (after the informer filters).
	slices := map[string]map[discovery.AddressType]*sliceInfo{}
	for _, s := range in.EndpointSlices {
		svc := s.Labels[discovery.LabelServiceName]
		if svc == "" {
			continue
		}
		k := nsName(s.Namespace, svc)
		if slices[k] == nil {
			slices[k] = map[discovery.AddressType]*sliceInfo{}
		}
		si := slices[k][s.AddressType]
		if si == nil {
			si = &sliceInfo{ports: map[string]bool{}}
			slices[k][s.AddressType] = si
		}
		si.any = true
		for _, p := range s.Ports {
			if p.Name != nil && p.Protocol != nil && p.Port != nil && *p.Port != 0 {
				si.ports[*p.Name+"/"+string(*p.Protocol)] = true
			}
		}
	}
	families := []v1.IPFamily{v1.IPv4Protocol}
	for _, s := range in.Services {
		for _, f := range s.Spec.IPFamilies {
			if f == v1.IPv6Protocol {
				families = append(families, v1.IPv6Protocol)
				break
			}
		}
		if len(families) == 2 {
			break
		}
	}
	noEndpointsReported := map[string]bool{}
	for _, fam := range families {
		plan, notes, err := compiler.Build(in, compiler.Options{
			Family:       fam,
			NodeName:     c.opts.NodeName,
			NodeIPs:      c.opts.NodeIPs,
			Zone:         c.opts.Zone,
			ServiceCIDRs: c.opts.ServiceCIDRs,
			FeatureGates: c.opts.FeatureGates,
		})
		if err != nil {
			c.add(Finding{Rule: "invalid-value", Message: err.Error()})
			continue
		}
		c.notes(notes)
		addrType := discovery.AddressTypeIPv4
		if fam == v1.IPv6Protocol {
			addrType = discovery.AddressTypeIPv6
		}
		for _, sp := range plan.ServicePorts {
			key := nsName(sp.Namespace, sp.Name)
			so := byName[key]
			if so == nil {
				continue
			}
			field := portField(so.Service, sp)
			famNote := ""
			if len(so.Spec.ClusterIPs) > 1 {
				famNote = " (" + string(fam) + ")"
			}
			at := func(rule, format string, args ...any) {
				c.at(rule, so.Source, "Service", sp.Namespace, sp.Name, field, format+famNote, args...)
			}
			target := fmt.Sprintf("%s:%d", sp.ClusterIP, sp.Port)
			if sp.ClusterIP != "" && strings.Contains(sp.ClusterIP, ":") {
				target = fmt.Sprintf("[%s]:%d", sp.ClusterIP, sp.Port)
			}
			hasAny := false
			for _, si := range slices[key] {
				hasAny = hasAny || si.any
			}
			if c.noPods[key] {
				continue // selector-matches-no-pod says it
			}
			if !hasAny {
				if noEndpointsReported[key] {
					continue
				}
				noEndpointsReported[key] = true
				if len(so.Spec.Selector) > 0 && c.workloads {
					c.at("no-endpoints", so.Source, "Service", sp.Namespace, sp.Name, "spec.selector", "no endpoints derived for it from the input's workloads: kube-proxy REJECTs traffic to every port")
				} else if len(so.Spec.Selector) > 0 {
					c.at("endpoints-not-in-input", so.Source, "Service", sp.Namespace, sp.Name, "spec.selector", "no Endpoints or EndpointSlices for it in the input (the EndpointSlice controller writes them in a cluster); endpoint checks skipped")
				} else {
					c.at("no-endpoints", so.Source, "Service", sp.Namespace, sp.Name, "metadata.name", "no selector and no Endpoints or EndpointSlices: kube-proxy REJECTs traffic to every port")
				}
				continue
			}
			si := slices[key][addrType]
			if len(sp.Endpoints) == 0 {
				if si == nil || !si.any {
					at("unmatched-service-port", "no %s EndpointSlice: kube-proxy REJECTs traffic to %s", addrType, target)
				} else if !si.ports[sp.PortName+"/"+string(sp.Protocol)] {
					at("unmatched-service-port", "no endpoint port is named %q with protocol %s (endpoint ports: %s): kube-proxy REJECTs traffic to %s", sp.PortName, sp.Protocol, describePorts(si.ports), target)
				} else {
					at("no-ready-endpoints", "its endpoint slices list no endpoints: kube-proxy REJECTs traffic to %s", target)
				}
				continue
			}
			ready, servingTerminating := 0, 0
			for _, ep := range sp.Endpoints {
				if ep.Ready {
					ready++
				} else if ep.Serving && ep.Terminating {
					servingTerminating++
				}
			}
			if ready == 0 {
				if servingTerminating > 0 {
					at("no-ready-endpoints", "none of its %d endpoints is ready; kube-proxy falls back to the %d serving terminating ones", len(sp.Endpoints), servingTerminating)
				} else {
					at("no-ready-endpoints", "none of its %d endpoints is ready or serving: kube-proxy REJECTs traffic to %s", len(sp.Endpoints), target)
				}
				continue
			}
			if c.opts.NodeName != "" && sp.HasEndpoints {
				if sp.ExternalPolicyLocal && sp.ExternallyAccessible && len(sp.LocalEndpoints) == 0 {
					at("no-local-endpoints", "externalTrafficPolicy Local and no ready endpoint on node %s: kube-proxy DROPs external traffic (%s) to it on that node", c.opts.NodeName, externalWays(sp))
				}
				if sp.InternalPolicyLocal && len(sp.LocalEndpoints) == 0 {
					at("no-local-endpoints", "internalTrafficPolicy Local and no ready endpoint on node %s: kube-proxy DROPs traffic from that node to %s", c.opts.NodeName, target)
				}
			}
			c.topology(sp, plan.Node, at)
		}
	}
}

// portField is the field path of a service port's spec.ports entry.
func portField(s *v1.Service, sp *compiler.ServicePort) string {
	for i, p := range s.Spec.Ports {
		if p.Name == sp.PortName && p.Protocol == sp.Protocol {
			return fmt.Sprintf("spec.ports[%d]", i)
		}
	}
	return "spec.ports"
}

func describePorts(ports map[string]bool) string {
	if len(ports) == 0 {
		return "none"
	}
	var out []string
	for p := range ports {
		name, proto, _ := strings.Cut(p, "/")
		if name == "" {
			name = `""`
		}
		out = append(out, name+"/"+proto)
	}
	sort.Strings(out)
	if len(out) > 8 {
		out = append(out[:8], fmt.Sprintf("and %d more", len(out)-8))
	}
	return strings.Join(out, ", ")
}

func externalWays(sp *compiler.ServicePort) string {
	var ways []string
	if sp.NodePort != 0 {
		ways = append(ways, fmt.Sprintf("NodePort %d", sp.NodePort))
	}
	if len(sp.LoadBalancerVIPs) > 0 {
		ways = append(ways, "load balancer IPs")
	}
	if len(sp.ExternalIPs) > 0 {
		ways = append(ways, "external IPs")
	}
	return strings.Join(ways, ", ")
}

// topology reports topology hints on the ready endpoints that kube-proxy
// does not apply on this node, and why (pkg/proxy/topology.go).
func (c *checker) topology(sp *compiler.ServicePort, node compiler.Node, at func(rule, format string, args ...any)) {
	var ready []*compiler.Endpoint
	zoneHinted, nodeHinted := 0, 0
	var firstZoneless, firstNodeless string
	for _, ep := range sp.Endpoints {
		if !ep.Ready {
			continue
		}
		ready = append(ready, ep)
		if len(ep.ZoneHints) > 0 {
			zoneHinted++
		} else if firstZoneless == "" {
			firstZoneless = ep.String()
		}
		if len(ep.NodeHints) > 0 {
			nodeHinted++
		} else if firstNodeless == "" {
			firstNodeless = ep.String()
		}
	}
	if zoneHinted == 0 && nodeHinted == 0 {
		return
	}
	if !sp.UsesClusterEndpoints {
		at("topology-hints-ignored", "hints ignored: internalTrafficPolicy Local uses only this node's endpoints")
		return
	}
	if sp.TopologyMode != "" {
		return // hints applied
	}
	allZone, allNode := zoneHinted == len(ready), nodeHinted == len(ready)
	switch {
	case !allZone && !allNode:
		if zoneHinted > 0 {
			at("topology-hints-ignored", "hints ignored: only %d of %d ready endpoints have hints.forZones (%s has none); kube-proxy needs them on every ready endpoint", zoneHinted, len(ready), firstZoneless)
		} else {
			at("topology-hints-ignored", "hints ignored: only %d of %d ready endpoints have hints.forNodes (%s has none); kube-proxy needs them on every ready endpoint", nodeHinted, len(ready), firstNodeless)
		}
	case allZone && node.Zone == "" && !(allNode && c.opts.NodeName != ""):
		// Node-specific: the node's zone is unknown. Only worth saying when a
		// node was named; otherwise every node-less check would say it.
		if c.opts.NodeName != "" {
			at("topology-hints-ignored", "hints ignored on node %s: its zone is unknown (give --zone or a Node object with %s)", c.opts.NodeName, "topology.kubernetes.io/zone")
		}
	case allZone && node.Zone != "":
		at("topology-hints-ignored", "hints ignored in zone %s: no ready endpoint is hinted for it, so kube-proxy uses every endpoint", node.Zone)
	case allNode && c.opts.NodeName != "":
		at("topology-hints-ignored", "hints ignored on node %s: no ready endpoint is hinted for it and zone hints are incomplete", c.opts.NodeName)
	}
}
