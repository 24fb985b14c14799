package compiler

import (
	"errors"
	"fmt"
	"strings"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// This file exposes validation per object without failing fast, for
// "svc2rules check": LoadAll goes on past a bad document, ValidateAll reports
// every finding of every object (and drops the invalid objects so that
// Normalize and Build can run on the rest), and Locator finds the line of a
// field. Load, Normalize and Build are unchanged by it.

// Finding is one problem of one input object found while loading or
// validating it.
type Finding struct {
	Source Source
	// Kind, Namespace and Name identify the object ("" when unknown, e.g. a
	// document that is not valid YAML).
	Kind, Namespace, Name string
	// Field is the path of the offending field ("spec.ports[0].name"), "" for
	// the whole document.
	Field string
	// Code classifies the problem: "invalid-yaml", "invalid-object",
	// "invalid-name", "invalid-ip", "invalid-cidr", "invalid-port",
	// "unsupported-value", "duplicate-value", "required-value",
	// "forbidden-field", "too-many" or "invalid-value".
	Code string
	// Message says what is wrong. Values from the input are quoted with %q,
	// so a message never holds a raw control character from the input.
	Message string
}

// Object is "Kind ns/name", "Kind name" or "Kind" (quoted when the name is
// not printable).
func (f Finding) Object() string {
	return objectLabel(f.Kind, f.Namespace, f.Name)
}

func objectLabel(kind, ns, name string) string {
	id := name
	if ns != "" {
		id = ns + "/" + name
	}
	if id == "" {
		return kind
	}
	if !printable(id) {
		id = fmt.Sprintf("%+q", id)
	}
	if kind == "" {
		return id
	}
	return kind + " " + id
}

// printable reports whether s holds only printable ASCII without quotes or
// backslashes (what a DNS name or label may hold, and more).
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' || c == '`' {
			return false
		}
	}
	return true
}

// LoadAll reads the manifests like Load but records a finding for every
// document that cannot be read (invalid YAML or JSON, not an object, a field
// of the wrong type) and goes on with the next one. Missing files, unreadable
// directories and the size and document limits are still errors. keep, if
// not nil, is given every file's data (for a Locator).
func LoadAll(opts LoadOptions, keep func(file string, data []byte)) (*Inputs, []Finding, error) {
	var findings []Finding
	in, err := load(opts, func(in *Inputs, file string, data []byte) error {
		if keep != nil {
			keep(file, data)
		}
		fs, err := in.addFileLenient(file, data)
		findings = append(findings, fs...)
		return err
	})
	if err != nil {
		return nil, findings, oneLine(err)
	}
	return in, findings, nil
}

// addFileLenient is addFile going on past bad documents; only the document
// limit stops it.
func (in *Inputs) addFileLenient(file string, data []byte) ([]Finding, error) {
	docs, err := splitDocumentsN(file, data, in.remainingDocuments())
	if err != nil {
		var ie *InputError
		if errors.As(err, &ie) {
			// Invalid JSON: the stream cannot be resynchronised.
			return []Finding{{Source: ie.Source, Code: "invalid-yaml", Message: ie.Err.Error()}}, nil
		}
		return nil, err
	}
	var findings []Finding
	for _, d := range docs {
		if err := in.countDocument(d.src); err != nil {
			return findings, err
		}
		j, err := yaml.YAMLToJSON(d.data)
		if err != nil {
			findings = append(findings, Finding{Source: d.src, Code: "invalid-yaml", Message: "invalid YAML: " + cleanYAMLError(err)})
			continue
		}
		if err := in.addJSON(j, d.src, 0); err != nil {
			if errors.Is(err, ErrTooManyDocuments) {
				return findings, err
			}
			f := Finding{Source: d.src, Code: "invalid-object", Message: err.Error()}
			var ie *InputError
			if errors.As(err, &ie) {
				f.Source = ie.Source
				f.Message = ie.Err.Error()
				f.Kind, f.Namespace, f.Name = splitObjectLabel(ie.Object)
			}
			findings = append(findings, f)
		}
	}
	return findings, nil
}

// splitObjectLabel splits addJSON's "Kind ns/name" back into its parts.
func splitObjectLabel(obj string) (kind, ns, name string) {
	kind, rest, _ := strings.Cut(obj, " ")
	if i := strings.Index(rest, "/"); i >= 0 {
		return kind, rest[:i], rest[i+1:]
	}
	return kind, "", rest
}

// ValidateAll applies the API defaults Normalize applies and validates every
// object as Normalize does, plus the API server rules that do not change
// rules (so compile does not enforce them, check does): targetPort,
// healthCheckNodePort and externalTrafficPolicy only where the type allows
// them, loadBalancerSourceRanges only on LoadBalancers, ipFamilyPolicy,
// ExternalName, Endpoints port names and nodeNames, EndpointSlice size limits,
// duplicate port names and hint zone names. It returns one finding per
// problem and removes every object with an error from in, so that Normalize
// and Build can then run on the valid rest.
func ValidateAll(in *Inputs) []Finding {
	var findings []Finding
	add := func(src Source, kind, ns, name string, fe fieldErrors) bool {
		for _, e := range fe {
			field, msg, ok := strings.Cut(e, ": ")
			if !ok {
				field, msg = "", e
			}
			findings = append(findings, Finding{Source: src, Kind: kind, Namespace: ns, Name: name, Field: field, Code: classify(field, msg), Message: msg})
		}
		return len(fe) == 0
	}

	svcs := in.Services[:0]
	for _, s := range in.Services {
		if s.Namespace == "" {
			s.Namespace = "default"
		}
		fe := extraServiceFieldErrors(s.Service) // before defaulting hides them
		defaultService(s.Service)
		fe = append(serviceFieldErrors(s.Service), fe...)
		if add(s.Source, "Service", s.Namespace, s.Name, fe) {
			svcs = append(svcs, s)
		}
	}
	in.Services = svcs

	eps := in.Endpoints[:0]
	for _, e := range in.Endpoints {
		if e.Namespace == "" {
			e.Namespace = "default"
		}
		defaultEndpoints(e.Endpoints)
		fe := append(endpointsFieldErrors(e.Endpoints), extraEndpointsFieldErrors(e.Endpoints)...)
		if add(e.Source, "Endpoints", e.Namespace, e.Name, fe) {
			eps = append(eps, e)
		}
	}
	in.Endpoints = eps

	slices := in.EndpointSlices[:0]
	for _, e := range in.EndpointSlices {
		if e.Namespace == "" {
			e.Namespace = "default"
		}
		defaultEndpointSlice(e.EndpointSlice)
		fe := append(endpointSliceFieldErrors(e.EndpointSlice), extraEndpointSliceFieldErrors(e.EndpointSlice)...)
		if add(e.Source, "EndpointSlice", e.Namespace, e.Name, fe) {
			slices = append(slices, e)
		}
	}
	in.EndpointSlices = slices

	// The expansion limit Normalize enforces: objects past it are dropped.
	var budget endpointBudget
	eps = in.Endpoints[:0]
	for _, e := range in.Endpoints {
		if err := budget.addEndpoints(e); err != nil {
			add(e.Source, "Endpoints", e.Namespace, e.Name, fieldErrors{"subsets: " + errors.Unwrap(err).Error()})
			continue
		}
		eps = append(eps, e)
	}
	in.Endpoints = eps
	slices = in.EndpointSlices[:0]
	for _, e := range in.EndpointSlices {
		if err := budget.addSlice(e); err != nil {
			add(e.Source, "EndpointSlice", e.Namespace, e.Name, fieldErrors{"endpoints: " + errors.Unwrap(err).Error()})
			continue
		}
		slices = append(slices, e)
	}
	in.EndpointSlices = slices

	// Pods the workloads would run, against the same limit (each pod may
	// become an endpoint of every port of a Service).
	pods := 0
	workloads := in.Workloads[:0]
	for _, w := range in.Workloads {
		if sh, err := w.shape(); err == nil && sh.replicas > 0 {
			pods += sh.replicas
			if pods > MaxEndpointPorts {
				findings = append(findings, Finding{Source: w.Source, Kind: w.Kind, Namespace: w.Namespace(), Name: w.Name(), Field: "spec.replicas", Code: "too-many",
					Message: fmt.Sprintf("too many pods: the input's workloads run more than %d pods here (a limit against hostile input)", MaxEndpointPorts)})
				continue
			}
		}
		workloads = append(workloads, w)
	}
	in.Workloads = workloads

	nodes := in.Nodes[:0]
	for _, n := range in.Nodes {
		if add(n.Source, "Node", "", n.Name, nodeFieldErrors(n)) {
			nodes = append(nodes, n)
		}
	}
	in.Nodes = nodes

	cidrs := in.ServiceCIDRs[:0]
	for _, c := range in.ServiceCIDRs {
		if add(c.Source, "ServiceCIDR", "", c.Name, serviceCIDRFieldErrors(c)) {
			cidrs = append(cidrs, c)
		}
	}
	in.ServiceCIDRs = cidrs
	return findings
}

// classify gives a validation message its finding code.
func classify(field, msg string) string {
	switch {
	case strings.Contains(msg, "invalid IP address") || strings.Contains(msg, "is not an IPv"):
		return "invalid-ip"
	case strings.Contains(msg, "invalid CIDR"):
		return "invalid-cidr"
	case strings.HasPrefix(msg, "duplicate"):
		return "duplicate-value"
	case strings.HasPrefix(msg, "required"):
		return "required-value"
	case strings.HasPrefix(msg, "unsupported value"):
		return "unsupported-value"
	case strings.HasPrefix(msg, "may not be used") || strings.HasPrefix(msg, "may only be"):
		return "forbidden-field"
	case strings.HasPrefix(msg, "too many") || strings.HasPrefix(msg, "must hold between") || strings.HasPrefix(msg, "at most"):
		return "too-many"
	case strings.Contains(msg, "must be between 1 and 65535") || strings.HasSuffix(field, "targetPort"):
		return "invalid-port"
	case strings.HasPrefix(msg, "invalid value") && (strings.HasSuffix(field, "name") || strings.HasSuffix(field, "namespace") ||
		strings.HasSuffix(field, "Name") || strings.HasPrefix(field, "metadata.labels") || strings.HasSuffix(field, "externalName")):
		return "invalid-name"
	}
	return "invalid-value"
}

// MaxEndpointPorts bounds the (port, endpoint) pairs of all Endpoints and
// EndpointSlices of an input: every pair becomes work in the mirroring and
// the plan and, when a Service port matches, rules. kube-proxy itself would
// face the same numbers, but a few hundred kilobytes of hostile manifests
// (many ports times many addresses) must not cost minutes and gigabytes.
var MaxEndpointPorts = 1 << 20

// endpointBudget counts pairs against MaxEndpointPorts.
type endpointBudget struct{ n int }

func (b *endpointBudget) spend(n int, src Source, obj string) error {
	b.n += n
	if b.n > MaxEndpointPorts {
		return &InputError{Source: src, Object: obj, Err: fmt.Errorf("too many endpoints: the input's EndpointSlices and Endpoints reach more than %d (port, endpoint) pairs here (a limit against hostile input)", MaxEndpointPorts)}
	}
	return nil
}

func (b *endpointBudget) addEndpoints(e *EndpointsObject) error {
	n := 0
	for _, ss := range e.Subsets {
		ports := len(ss.Ports)
		if ports == 0 {
			ports = 1
		}
		n += ports * (len(ss.Addresses) + len(ss.NotReadyAddresses))
	}
	return b.spend(n, e.Source, "Endpoints "+e.Namespace+"/"+e.Name)
}

func (b *endpointBudget) addSlice(e *EndpointSliceObject) error {
	ports := len(e.Ports)
	if ports == 0 {
		ports = 1
	}
	return b.spend(ports*len(e.Endpoints), e.Source, "EndpointSlice "+e.Namespace+"/"+e.Name)
}

// API server limits of discovery/v1 EndpointSlices (pkg/apis/discovery/validation).
const (
	maxSliceEndpoints = 1000
	maxSlicePorts     = 20000
	maxZoneHints      = 8
)

// extraServiceFieldErrors are the API server's Service rules that svc2rules
// compile does not need (the values never reach a rule), checked on the
// object as written (before defaulting).
func extraServiceFieldErrors(s *v1.Service) fieldErrors {
	var fe fieldErrors
	spec := &s.Spec
	typ := spec.Type
	if typ == "" {
		typ = v1.ServiceTypeClusterIP
	}
	if typ == v1.ServiceTypeExternalName {
		for _, msg := range validation.IsDNS1123Subdomain(spec.ExternalName) {
			fe.add("spec.externalName", "invalid value %q: %s", spec.ExternalName, msg)
		}
		if spec.ClusterIP != "" && spec.ClusterIP != v1.ClusterIPNone {
			fe.add("spec.clusterIP", "may not be set for type ExternalName")
		}
		return fe
	}
	for i, p := range spec.Ports {
		path := fmt.Sprintf("spec.ports[%d].targetPort", i)
		switch p.TargetPort.Type {
		case intstr.Int:
			if p.TargetPort.IntVal != 0 {
				checkPort(&fe, path, p.TargetPort.IntVal)
			}
		case intstr.String:
			for _, msg := range validation.IsValidPortName(p.TargetPort.StrVal) {
				fe.add(path, "invalid value %q: %s", p.TargetPort.StrVal, msg)
			}
		}
	}
	nodePorts := map[string]int{}
	for i, p := range spec.Ports {
		if p.NodePort == 0 {
			continue
		}
		proto := p.Protocol
		if proto == "" {
			proto = v1.ProtocolTCP
		}
		key := fmt.Sprintf("%d/%s", p.NodePort, proto)
		if j, dup := nodePorts[key]; dup {
			fe.add(fmt.Sprintf("spec.ports[%d].nodePort", i), "duplicate nodePort %s (spec.ports[%d])", key, j)
		}
		nodePorts[key] = i
	}
	externally := typ == v1.ServiceTypeLoadBalancer || typ == v1.ServiceTypeNodePort || (typ == v1.ServiceTypeClusterIP && len(spec.ExternalIPs) > 0)
	if spec.ExternalTrafficPolicy != "" && !externally {
		fe.add("spec.externalTrafficPolicy", "may only be set for externally-accessible services (NodePort, LoadBalancer or externalIPs)")
	}
	if spec.HealthCheckNodePort != 0 && !(typ == v1.ServiceTypeLoadBalancer && spec.ExternalTrafficPolicy == v1.ServiceExternalTrafficPolicyLocal) {
		fe.add("spec.healthCheckNodePort", "may only be set when type is LoadBalancer and externalTrafficPolicy is Local")
	}
	if len(spec.LoadBalancerSourceRanges) > 0 && typ != v1.ServiceTypeLoadBalancer {
		fe.add("spec.loadBalancerSourceRanges", "may only be used when type is LoadBalancer")
	}
	if p := spec.IPFamilyPolicy; p != nil {
		switch *p {
		case v1.IPFamilyPolicySingleStack:
			if len(spec.IPFamilies) > 1 || len(spec.ClusterIPs) > 1 {
				fe.add("spec.ipFamilyPolicy", "SingleStack may not have two families or two clusterIPs")
			}
		case v1.IPFamilyPolicyPreferDualStack, v1.IPFamilyPolicyRequireDualStack:
		default:
			fe.add("spec.ipFamilyPolicy", "unsupported value %q: must be SingleStack, PreferDualStack or RequireDualStack", *p)
		}
	}
	return fe
}

// extraEndpointsFieldErrors are the API server's Endpoints rules compile does
// not need: port names required and unique in a subset of several ports, and
// nodeName syntax.
func extraEndpointsFieldErrors(e *v1.Endpoints) fieldErrors {
	var fe fieldErrors
	for i, ss := range e.Subsets {
		names := map[string]bool{}
		for j, p := range ss.Ports {
			path := fmt.Sprintf("subsets[%d].ports[%d].name", i, j)
			if p.Name == "" && len(ss.Ports) > 1 {
				fe.add(path, "required when a subset has more than one port")
			}
			if names[p.Name] {
				fe.add(path, "duplicate port name %q", p.Name)
			}
			names[p.Name] = true
		}
		for _, list := range []struct {
			name  string
			addrs []v1.EndpointAddress
		}{{"addresses", ss.Addresses}, {"notReadyAddresses", ss.NotReadyAddresses}} {
			for j, a := range list.addrs {
				if a.NodeName != nil && *a.NodeName != "" {
					checkDNSSubdomain(&fe, fmt.Sprintf("subsets[%d].%s[%d].nodeName", i, list.name, j), *a.NodeName)
				}
			}
		}
	}
	return fe
}

// extraEndpointSliceFieldErrors are the API server's EndpointSlice limits and
// rules compile does not need.
func extraEndpointSliceFieldErrors(e *discovery.EndpointSlice) fieldErrors {
	var fe fieldErrors
	if len(e.Endpoints) > maxSliceEndpoints {
		fe.add("endpoints", "too many: %d, at most %d", len(e.Endpoints), maxSliceEndpoints)
	}
	if len(e.Ports) > maxSlicePorts {
		fe.add("ports", "too many: %d, at most %d", len(e.Ports), maxSlicePorts)
	}
	names := map[string]bool{}
	for i, p := range e.Ports {
		name := ""
		if p.Name != nil {
			name = *p.Name
		}
		if names[name] {
			fe.add(fmt.Sprintf("ports[%d].name", i), "duplicate port name %q", name)
		}
		names[name] = true
	}
	for i, ep := range e.Endpoints {
		if ep.Hints == nil {
			continue
		}
		if len(ep.Hints.ForZones) > maxZoneHints {
			fe.add(fmt.Sprintf("endpoints[%d].hints.forZones", i), "too many: %d, at most %d", len(ep.Hints.ForZones), maxZoneHints)
		}
		for j, z := range ep.Hints.ForZones {
			for _, msg := range validation.IsValidLabelValue(z.Name) {
				fe.add(fmt.Sprintf("endpoints[%d].hints.forZones[%d].name", i, j), "invalid value %q: %s", z.Name, msg)
			}
		}
		for j, n := range ep.Hints.ForNodes {
			checkDNSSubdomain(&fe, fmt.Sprintf("endpoints[%d].hints.forNodes[%d].name", i, j), n.Name)
		}
	}
	return fe
}

// Locator finds the line of a field in the YAML documents of one file, for
// findings more precise than "the document starts here". It understands the
// block style kubectl and most tools write; for anything else (flow style,
// JSON, List items) it answers the line the document starts on.
type Locator struct {
	docs []document
}

// NewLocator splits the data of one file as Load does.
func NewLocator(file string, data []byte) *Locator {
	docs, _ := splitDocuments(file, data)
	return &Locator{docs: docs}
}

// Line returns the line of field ("spec.ports[1].nodePort") in the document
// at src, or src.Line when it cannot tell.
func (l *Locator) Line(src Source, field string) int {
	if l == nil || field == "" || src.Document < 1 || src.Document > len(l.docs) {
		return src.Line
	}
	d := l.docs[src.Document-1]
	if d.src.Line != src.Line || len(d.data) == 0 || d.data[0] == '{' {
		return src.Line // a List item, or JSON
	}
	// The document's data starts with the blank and comment lines before
	// its first content line (src.Line).
	lines := strings.Split(strings.TrimSuffix(string(d.data), "\n"), "\n")
	first := src.Line
	for _, t := range lines {
		if isBlankYAML([]byte(t)) {
			first--
			continue
		}
		break
	}
	if n := findField(lines, parseFieldPath(field)); n >= 0 {
		return first + n
	}
	return src.Line
}

// pathSeg is one step of a field path: a key or a list index.
type pathSeg struct {
	key   string
	index int // -1 for a key
}

func parseFieldPath(p string) []pathSeg {
	var segs []pathSeg
	// Split at the dots outside brackets (labels[kubernetes.io/service-name]).
	var parts []string
	depth, start := 0, 0
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '[':
			depth++
		case ']':
			depth--
		case '.':
			if depth == 0 {
				parts = append(parts, p[start:i])
				start = i + 1
			}
		}
	}
	parts = append(parts, p[start:])
	for _, part := range parts {
		key, rest, _ := strings.Cut(part, "[")
		if key != "" {
			segs = append(segs, pathSeg{key: key, index: -1})
		}
		for rest != "" {
			num, after, ok := strings.Cut(rest, "]")
			if !ok {
				return nil
			}
			n := 0
			for _, c := range num {
				if c < '0' || c > '9' {
					// labels[kubernetes.io/service-name]: a map key.
					segs = append(segs, pathSeg{key: num, index: -1})
					n = -1
					break
				}
				n = n*10 + int(c-'0')
			}
			if n >= 0 {
				segs = append(segs, pathSeg{index: n})
			}
			rest = strings.TrimPrefix(after, "[")
		}
	}
	return segs
}

// yamlLine is one line of a block-style document: the column where its
// content starts after any "- " sequence markers, its key if it holds one,
// and the column of its first sequence marker (-1 if none).
type yamlLine struct {
	blank     bool
	indent    int // column of the first non-space character
	keyCol    int
	key       string
	seqCol    int
	hasKey    bool
	endsValue bool // "key:" with nothing after (a nested block follows)
}

func scanYAMLLine(t string) yamlLine {
	l := yamlLine{seqCol: -1}
	trimmed := strings.TrimLeft(t, " ")
	if trimmed == "" || trimmed[0] == '#' {
		l.blank = true
		return l
	}
	l.indent = len(t) - len(trimmed)
	col := l.indent
	rest := trimmed
	if rest == "-" || strings.HasPrefix(rest, "- ") {
		l.seqCol = col
		rest = strings.TrimPrefix(rest, "-")
		n := len(rest)
		rest = strings.TrimLeft(rest, " ")
		col += 1 + n - len(rest)
	}
	l.keyCol = col
	key := ""
	if len(rest) > 0 && (rest[0] == '"' || rest[0] == '\'') {
		if end := strings.IndexByte(rest[1:], rest[0]); end >= 0 {
			key = rest[1 : end+1]
			rest = rest[end+2:]
			if strings.HasPrefix(rest, ":") {
				l.hasKey, l.key = true, key
				rest = rest[1:]
			}
		}
	} else if i := strings.Index(rest, ":"); i > 0 && (i == len(rest)-1 || rest[i+1] == ' ') {
		l.hasKey, l.key = true, strings.TrimRight(rest[:i], " ")
		rest = rest[i+1:]
	}
	if l.hasKey {
		v := strings.TrimSpace(rest)
		l.endsValue = v == "" || v[0] == '#'
	}
	return l
}

// findField walks the path through the block structure of lines and returns
// the index of the line holding the last segment; when the path leaves what
// it can follow (a flow-style value, a defaulted field absent from the text)
// the line of the deepest segment found, or -1.
func findField(text []string, path []pathSeg) int {
	if len(path) == 0 {
		return -1
	}
	lines := make([]yamlLine, len(text))
	for i, t := range text {
		lines[i] = scanYAMLLine(t)
	}
	// The scope is lines[lo:hi] whose content is at column >= minCol;
	// lo may be a "- key: v" line whose item content starts at keyCol.
	lo, hi, minCol := 0, len(lines), 0
	found, deepest := -1, -1
	for _, seg := range path {
		if found >= 0 {
			deepest = found
		}
		found = -1
		if seg.index < 0 {
			// The mapping's keys sit at the column of its first key.
			col := -1
			for i := lo; i < hi; i++ {
				l := lines[i]
				if l.blank {
					continue
				}
				if i > lo && l.indent < minCol {
					break
				}
				if col < 0 {
					if !l.hasKey {
						return deepest
					}
					col = l.keyCol
				}
				if l.hasKey && l.keyCol == col && l.key == seg.key {
					found = i
					break
				}
				if i > lo && l.indent < col && l.keyCol < col {
					break
				}
			}
			if found < 0 {
				return deepest
			}
			// Its value: the following lines indented deeper than the key,
			// or a sequence at the key's own column.
			lo, minCol = found+1, col+1
			hi = found + 1
			for hi < len(lines) {
				l := lines[hi]
				if !l.blank && l.indent < minCol && !(l.seqCol == col) {
					break
				}
				hi++
			}
			if !lines[found].endsValue {
				// Inline value (scalar or flow style): the field is on this line.
				lo, hi = found, found
			}
		} else {
			col := -1
			n := -1
			for i := lo; i < hi; i++ {
				l := lines[i]
				if l.blank {
					continue
				}
				if col < 0 {
					if l.seqCol < 0 {
						return deepest
					}
					col = l.seqCol
				}
				if l.indent < col {
					break
				}
				if l.seqCol == col && l.indent == col {
					n++
					if n == seg.index {
						found = i
						break
					}
				}
			}
			if found < 0 {
				return deepest
			}
			lo, minCol = found, col+1
			hi = found + 1
			for hi < len(lines) {
				l := lines[hi]
				if !l.blank && (l.indent < minCol) {
					break
				}
				hi++
			}
		}
	}
	return found
}
