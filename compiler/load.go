package compiler

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/yaml"
)

// Inputs are the objects read from the manifests, each with where it came from.
type Inputs struct {
	Services       []*ServiceObject
	Endpoints      []*EndpointsObject
	EndpointSlices []*EndpointSliceObject
	Nodes          []*NodeObject
	ServiceCIDRs   []*ServiceCIDRObject
	// Workloads are Pods and the workloads that create them (workloads.go),
	// the input of endpoint derivation (derive.go).
	Workloads []*WorkloadObject

	// SkippedKinds counts the documents of kinds kube-proxy does not read,
	// by "apiVersion/kind" (one note per kind is printed, not one per object).
	SkippedKinds map[string]int

	// documents counts the documents and List items read so far, against
	// maxDocuments (0: DefaultMaxDocuments).
	documents, maxDocuments int
}

// ErrTooManyDocuments is wrapped by the error Load returns when the input
// holds more than LoadOptions.MaxDocuments documents and List items.
var ErrTooManyDocuments = errors.New("too many documents")

// DefaultMaxDocuments is the default bound on the number of documents and
// List items of one Load (LoadOptions.MaxDocuments).
const DefaultMaxDocuments = 200000

// remainingDocuments is how many more documents the limit allows (at least 1).
func (in *Inputs) remainingDocuments() int {
	max := in.maxDocuments
	if max <= 0 {
		max = DefaultMaxDocuments
	}
	if r := max - in.documents; r > 0 {
		return r
	}
	return 1
}

// countDocument counts one document or List item against the limit.
func (in *Inputs) countDocument(src Source) error {
	in.documents++
	max := in.maxDocuments
	if max <= 0 {
		max = DefaultMaxDocuments
	}
	if in.documents > max {
		return &InputError{Source: src, Err: fmt.Errorf("%w: more than %d documents and List items in the input (a limit against hostile input; split the input)", ErrTooManyDocuments, max)}
	}
	return nil
}

// ServiceObject is a v1 Service and its source.
type ServiceObject struct {
	*v1.Service
	Source Source
}

// EndpointsObject is a v1 Endpoints and its source.
type EndpointsObject struct {
	*v1.Endpoints
	Source Source
}

// EndpointSliceObject is a discovery.k8s.io/v1 EndpointSlice and its source.
// Mirrored is set for slices made from Endpoints by the mirroring step.
type EndpointSliceObject struct {
	*discovery.EndpointSlice
	Source   Source
	Mirrored bool
}

// NodeObject is a v1 Node and its source.
type NodeObject struct {
	*v1.Node
	Source Source
}

// ServiceCIDRObject is a networking.k8s.io ServiceCIDR (v1 or v1beta1) and its source.
type ServiceCIDRObject struct {
	Name   string
	CIDRs  []string
	Source Source
}

// InputError is an error in the input, located as precisely as we can.
type InputError struct {
	Source Source
	// Object is "Kind ns/name" when known.
	Object string
	Err    error
}

func (e *InputError) Error() string {
	return escapeControl(e.message())
}

// escapeControl escapes the control characters of an error message (a file
// name or an object name from hostile input), so that it stays one line and
// cannot start a line of its own in a CI log (e.g. a "::" workflow command).
func escapeControl(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) < 0 {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			fmt.Fprintf(&b, `\x%02x`, r)
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func (e *InputError) message() string {
	var b strings.Builder
	b.WriteString(e.Source.File)
	if e.Source.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Source.Line)
	}
	if e.Source.Document > 0 {
		fmt.Fprintf(&b, " (document %d)", e.Source.Document)
	}
	if e.Object != "" {
		b.WriteString(": ")
		b.WriteString(quoteObject(e.Object))
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *InputError) Unwrap() error { return e.Err }

// quoteObject quotes the name part of "Kind ns/name" when it is not
// printable (a name that failed validation: quotes, spaces, newlines).
func quoteObject(obj string) string {
	kind, rest, ok := strings.Cut(obj, " ")
	if !ok {
		rest, kind = obj, ""
	}
	if printable(rest) {
		return obj
	}
	if kind == "" {
		return fmt.Sprintf("%+q", rest)
	}
	return kind + " " + fmt.Sprintf("%+q", rest)
}

// LoadOptions say where to read manifests from.
type LoadOptions struct {
	// Paths are files, directories or "-" (stdin).
	Paths []string
	// Recursive descends into subdirectories of directory paths.
	Recursive bool
	// Stdin is read for "-".
	Stdin io.Reader
	// MaxBytes bounds the size of each input file (0 = 256 MiB), so a hostile
	// input cannot exhaust memory.
	MaxBytes int64
	// MaxDocuments bounds the number of documents plus List items over all
	// inputs (0 = DefaultMaxDocuments).
	MaxDocuments int
}

// Load reads every manifest named by opts into Inputs. Files of a directory
// are read in lexical order; objects keep their input order.
func Load(opts LoadOptions) (*Inputs, error) {
	in, err := load(opts, (*Inputs).addFile)
	return in, oneLine(err)
}

// oneLine makes an error that is not an InputError (those escape their own
// text) print on one line: file names come from directories of hostile
// repositories too.
func oneLine(err error) error {
	var ie *InputError
	if err == nil || errors.As(err, &ie) || escapeControl(err.Error()) == err.Error() {
		return err
	}
	return &escapedError{err}
}

type escapedError struct{ err error }

func (e *escapedError) Error() string { return escapeControl(e.err.Error()) }
func (e *escapedError) Unwrap() error { return e.err }

// load is Load with the per-file step given: add reads one file's data into
// in (addFile stops at the first bad document; LoadAll goes on).
func load(opts LoadOptions, add func(in *Inputs, file string, data []byte) error) (*Inputs, error) {
	if len(opts.Paths) == 0 {
		return nil, errors.New("no input: give -f FILE, -f DIR or -f - (stdin)")
	}
	in := &Inputs{SkippedKinds: map[string]int{}, maxDocuments: opts.MaxDocuments}
	maxBytes := opts.MaxBytes
	if maxBytes <= 0 {
		maxBytes = 256 << 20
	}
	stdinUsed := false
	for _, p := range opts.Paths {
		if p == "-" {
			if stdinUsed {
				return nil, errors.New("stdin (-) given more than once")
			}
			stdinUsed = true
			if opts.Stdin == nil {
				return nil, errors.New("stdin not available")
			}
			data, err := readLimited(opts.Stdin, maxBytes)
			if err != nil {
				return nil, fmt.Errorf("<stdin>: %w", err)
			}
			if err := add(in, "<stdin>", data); err != nil {
				return nil, err
			}
			continue
		}
		files, err := expandPath(p, opts.Recursive)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			fh, err := os.Open(f)
			if err != nil {
				return nil, err
			}
			data, err := readLimitedSized(fh, maxBytes)
			fh.Close()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			if err := add(in, f, data); err != nil {
				return nil, err
			}
		}
	}
	return in, nil
}

// readLimitedSized is readLimited for a file: the buffer is sized from the
// file's size, so a large file is read without growing it step by step.
func readLimitedSized(f *os.File, max int64) ([]byte, error) {
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() || st.Size() <= 0 || st.Size() > max {
		return readLimited(f, max)
	}
	buf := bytes.NewBuffer(make([]byte, 0, st.Size()+512))
	if _, err := buf.ReadFrom(io.LimitReader(f, max+1)); err != nil {
		return nil, err
	}
	if int64(buf.Len()) > max {
		return nil, fmt.Errorf("input larger than %d bytes", max)
	}
	return buf.Bytes(), nil
}

func readLimited(r io.Reader, max int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("input larger than %d bytes", max)
	}
	return data, nil
}

func isManifestFile(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

// expandPath lists the manifest files of a path: the file itself, or the
// *.yaml, *.yml and *.json files of a directory (recursively with recursive).
func expandPath(p string, recursive bool) ([]string, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return []string{p}, nil
	}
	var files []string
	err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != p && !recursive {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() && isManifestFile(d.Name()) {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: directory holds no *.yaml, *.yml or *.json files", p)
	}
	return files, nil
}

// document is one YAML or JSON document of a file.
type document struct {
	data []byte
	src  Source
	// json is set for the values of a JSON stream (splitJSON).
	json bool
}

// splitDocuments splits a YAML stream at "---" lines (or a JSON stream into
// its top-level values), keeping the line each document starts on.
func splitDocuments(file string, data []byte) ([]document, error) {
	return splitDocumentsN(file, data, 0)
}

// splitDocumentsN is splitDocuments that stops after max+1 documents
// (max <= 0: no limit), so a stream of millions of tiny documents is cut
// short before it costs memory; the caller reports the excess.
func splitDocumentsN(file string, data []byte, max int) ([]document, error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n\ufeff")
	if len(trimmed) > 0 && trimmed[0] == '{' {
		return splitJSON(file, data, max)
	}
	full := func(docs []document) bool { return max > 0 && len(docs) > max }
	var docs []document
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), len(data)+1)
	var cur bytes.Buffer
	line, start := 0, 1
	content := false
	flush := func() {
		if content {
			docs = append(docs, document{data: append([]byte(nil), cur.Bytes()...), src: Source{File: file, Document: len(docs) + 1, Line: start}})
		}
		cur.Reset()
		content = false
	}
	for sc.Scan() {
		line++
		t := sc.Bytes()
		if isDocSeparator(t) {
			flush()
			if full(docs) {
				return docs, nil
			}
			start = line + 1
			continue
		}
		if !content && isBlankYAML(t) {
			// Leading comments and blank lines: report the document from its first content line.
			start = line + 1
		} else {
			content = true
		}
		cur.Write(t)
		cur.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	flush()
	return docs, nil
}

func isDocSeparator(line []byte) bool {
	if !bytes.HasPrefix(line, []byte("---")) {
		return false
	}
	rest := bytes.TrimSpace(line[3:])
	return len(rest) == 0 || rest[0] == '#'
}

func isBlankYAML(b []byte) bool {
	for _, l := range bytes.Split(b, []byte("\n")) {
		t := bytes.TrimSpace(l)
		if len(t) == 0 || t[0] == '#' {
			continue
		}
		if string(t) == "..." {
			continue
		}
		return false
	}
	return true
}

func splitJSON(file string, data []byte, max int) ([]document, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	var docs []document
	var lines lineCounter
	for max <= 0 || len(docs) <= max {
		off := dec.InputOffset()
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if err == io.EOF {
			return docs, nil
		}
		if err != nil {
			return nil, &InputError{Source: Source{File: file, Document: len(docs) + 1, Line: lines.at(data, dec.InputOffset())}, Err: fmt.Errorf("invalid JSON: %v", err)}
		}
		start := off
		for start < int64(len(data)) && strings.ContainsRune(" \t\r\n,", rune(data[start])) {
			start++
		}
		docs = append(docs, document{data: raw, src: Source{File: file, Document: len(docs) + 1, Line: lines.at(data, start)}, json: true})
	}
	return docs, nil
}

// lineCounter gives the line of increasing offsets in one pass over the data
// (counting from the start for every document would be quadratic in a stream
// of many small documents).
type lineCounter struct {
	off  int64
	line int
}

// at returns the 1-based line of offset off; offsets must not decrease
// between calls (a smaller one restarts the count).
func (c *lineCounter) at(data []byte, off int64) int {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	if off < c.off || c.line == 0 {
		c.off, c.line = 0, 1
	}
	c.line += bytes.Count(data[c.off:off], []byte("\n"))
	c.off = off
	return c.line
}

func (in *Inputs) addFile(file string, data []byte) error {
	docs, err := splitDocumentsN(file, data, in.remainingDocuments())
	if err != nil {
		return err
	}
	return in.addDocuments(docs)
}

// documentToJSON converts one document to JSON as sigs.k8s.io/yaml's
// YAMLToJSON does, through a faster path when the document allows one
// (fastYAMLToJSON, fastJSONToJSON) giving the same bytes.
func documentToJSON(d document) ([]byte, error) {
	fast := fastYAMLToJSON
	if d.json {
		fast = fastJSONToJSON
	}
	if j, ok := fast(d.data); ok {
		return j, nil
	}
	j, err := yaml.YAMLToJSON(d.data)
	if err != nil {
		return nil, &InputError{Source: d.src, Err: fmt.Errorf("invalid YAML: %v", cleanYAMLError(err))}
	}
	return j, nil
}

// decodeDocument is the pure part of reading one document (conversion to
// JSON and decoding), so that documents can be decoded in parallel.
func decodeDocument(d document) decodedObject {
	j, err := documentToJSON(d)
	if err != nil {
		return decodedObject{err: err}
	}
	return decodeJSON(j, d.src)
}

// parallelChunk is the number of documents a decoding worker takes at a time.
const parallelChunk = 64

// addDocuments decodes the documents (in parallel when there are many) and
// adds them in input order, stopping at the first error in input order,
// exactly as decoding them one after the other would.
func (in *Inputs) addDocuments(docs []document) error {
	workers := runtime.GOMAXPROCS(0)
	if workers > 8 {
		workers = 8
	}
	if workers < 2 || len(docs) < 2*parallelChunk {
		for _, d := range docs {
			if err := in.countDocument(d.src); err != nil {
				return err
			}
			r := decodeDocument(d)
			if err := in.addDecoded(&r, 0); err != nil {
				return err
			}
		}
		return nil
	}
	chunks := (len(docs) + parallelChunk - 1) / parallelChunk
	results := make([]decodedObject, len(docs))
	done := make([]chan struct{}, chunks)
	for i := range done {
		done[i] = make(chan struct{})
	}
	var next atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				c := int(next.Add(1) - 1)
				if c >= chunks {
					return
				}
				for i := c * parallelChunk; i < len(docs) && i < (c+1)*parallelChunk; i++ {
					results[i] = decodeDocument(docs[i])
					docs[i].data = nil
				}
				close(done[c])
			}
		}()
	}
	defer wg.Wait()
	for c := 0; c < chunks; c++ {
		<-done[c]
		for i := c * parallelChunk; i < len(docs) && i < (c+1)*parallelChunk; i++ {
			err := in.countDocument(docs[i].src)
			if err == nil {
				err = in.addDecoded(&results[i], 0)
			}
			results[i] = decodedObject{}
			if err != nil {
				stop.Store(true)
				return err
			}
		}
	}
	return nil
}

// cleanYAMLError drops the library's "error converting YAML to JSON: " prefix.
func cleanYAMLError(err error) string {
	s := err.Error()
	s = strings.TrimPrefix(s, "error converting YAML to JSON: ")
	return s
}

type typeMeta struct {
	APIVersion string          `json:"apiVersion"`
	Kind       string          `json:"kind"`
	Metadata   json.RawMessage `json:"metadata"`
	Items      json.RawMessage `json:"items"`
}

func objectName(j []byte) string {
	var m struct {
		Metadata struct {
			Namespace string `json:"namespace"`
			Name      string `json:"name"`
		} `json:"metadata"`
	}
	_ = json.Unmarshal(j, &m)
	if m.Metadata.Namespace != "" {
		return m.Metadata.Namespace + "/" + m.Metadata.Name
	}
	return m.Metadata.Name
}

// maxListDepth bounds nesting of List kinds (a List of Lists of ...).
const maxListDepth = 4

func (in *Inputs) addJSON(j []byte, src Source, depth int) error {
	d := decodeJSON(j, src)
	return in.addDecoded(&d, depth)
}

// decodedObject is one JSON document decoded (decodeJSON): an error, nothing
// (null), an object of a kind kube-proxy reads, or the JSON and its type for
// addDecoded to read on (Lists, workloads, skipped kinds).
type decodedObject struct {
	err  error
	null bool

	service     *v1.Service
	endpoints   *v1.Endpoints
	slice       *discovery.EndpointSlice
	node        *v1.Node
	serviceCIDR *networkingv1.ServiceCIDR

	j   []byte
	tm  typeMeta
	src Source
}

// decodeJSON decodes one JSON document. It only reads j, so documents can
// be decoded in parallel; addDecoded adds the result to the inputs.
func decodeJSON(j []byte, src Source) decodedObject {
	if string(bytes.TrimSpace(j)) == "null" {
		return decodedObject{null: true}
	}
	var tm typeMeta
	if err := json.Unmarshal(j, &tm); err != nil {
		return decodedObject{err: &InputError{Source: src, Err: fmt.Errorf("not a Kubernetes object: %v", err)}}
	}
	if tm.Kind == "" {
		return decodedObject{err: &InputError{Source: src, Err: errors.New("object has no kind")}}
	}
	decode := func(into any) error {
		if err := strictUnmarshal(j, into); err != nil {
			return &InputError{Source: src, Object: tm.Kind + " " + objectName(j), Err: err}
		}
		return nil
	}
	var d decodedObject
	group, version := splitAPIVersion(tm.APIVersion)
	switch {
	case group == "" && version == "v1" && tm.Kind == "Service":
		d.service = &v1.Service{}
		d.err = decode(d.service)
	case group == "" && version == "v1" && tm.Kind == "Endpoints":
		d.endpoints = &v1.Endpoints{}
		d.err = decode(d.endpoints)
	case group == "discovery.k8s.io" && version == "v1" && tm.Kind == "EndpointSlice":
		d.slice = &discovery.EndpointSlice{}
		d.err = decode(d.slice)
	case group == "" && version == "v1" && tm.Kind == "Node":
		d.node = &v1.Node{}
		d.err = decode(d.node)
	case group == "networking.k8s.io" && (version == "v1" || version == "v1beta1") && tm.Kind == "ServiceCIDR":
		d.serviceCIDR = &networkingv1.ServiceCIDR{}
		d.err = decode(d.serviceCIDR)
	default:
		d.j, d.tm = j, tm
	}
	d.src = src
	return d
}

// addDecoded adds a decoded document to the inputs (Lists and workloads are
// decoded here, in order).
func (in *Inputs) addDecoded(d *decodedObject, depth int) error {
	if d.err != nil {
		return d.err
	}
	src := d.src
	switch {
	case d.null:
	case d.service != nil:
		in.Services = append(in.Services, &ServiceObject{Service: d.service, Source: src})
	case d.endpoints != nil:
		in.Endpoints = append(in.Endpoints, &EndpointsObject{Endpoints: d.endpoints, Source: src})
	case d.slice != nil:
		in.EndpointSlices = append(in.EndpointSlices, &EndpointSliceObject{EndpointSlice: d.slice, Source: src})
	case d.node != nil:
		in.Nodes = append(in.Nodes, &NodeObject{Node: d.node, Source: src})
	case d.serviceCIDR != nil:
		c := d.serviceCIDR
		in.ServiceCIDRs = append(in.ServiceCIDRs, &ServiceCIDRObject{Name: c.Name, CIDRs: c.Spec.CIDRs, Source: src})
	default:
		return in.addOther(d.j, d.tm, src, depth)
	}
	return nil
}

// addOther adds a document of another kind than those decodeJSON decodes:
// a List, a workload or a skipped kind.
func (in *Inputs) addOther(j []byte, tm typeMeta, src Source, depth int) error {
	group, version := splitAPIVersion(tm.APIVersion)
	switch {
	case strings.HasSuffix(tm.Kind, "List") && isListKind(group, version, tm.Kind):
		if depth >= maxListDepth {
			return &InputError{Source: src, Object: tm.Kind, Err: errors.New("Lists nested too deeply")}
		}
		var items []json.RawMessage
		if len(tm.Items) > 0 && string(tm.Items) != "null" {
			if err := json.Unmarshal(tm.Items, &items); err != nil {
				return &InputError{Source: src, Object: tm.Kind, Err: fmt.Errorf("items: %v", err)}
			}
		}
		itemKind := strings.TrimSuffix(tm.Kind, "List")
		for _, item := range items {
			if err := in.countDocument(src); err != nil {
				return err
			}
			if itemKind != "" {
				// Typed lists (ServiceList, ...) may omit kind/apiVersion on items.
				item = withDefaultKind(item, tm.APIVersion, itemKind)
			}
			if err := in.addJSON(item, src, depth+1); err != nil {
				return err
			}
		}
	default:
		if handled, err := in.addWorkload(j, tm, src, depth); handled {
			return err
		}
		key := tm.APIVersion + "/" + tm.Kind
		if tm.APIVersion == "" {
			key = tm.Kind
		}
		if !printable(key) {
			key = fmt.Sprintf("%+q", key) // it is printed in a note
		}
		in.SkippedKinds[key]++
	}
	return nil
}

func isListKind(group, version, kind string) bool {
	switch kind {
	case "List":
		return true
	case "ServiceList", "EndpointsList", "NodeList":
		return group == "" && version == "v1"
	case "EndpointSliceList":
		return group == "discovery.k8s.io" && version == "v1"
	case "ServiceCIDRList":
		return group == "networking.k8s.io"
	}
	return false
}

// withDefaultKind fills in apiVersion and kind of a typed list's item when absent.
func withDefaultKind(item json.RawMessage, apiVersion, kind string) json.RawMessage {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(item, &m); err != nil || m == nil {
		return item
	}
	changed := false
	if _, ok := m["kind"]; !ok {
		m["kind"], _ = json.Marshal(kind)
		changed = true
	}
	if _, ok := m["apiVersion"]; !ok {
		m["apiVersion"], _ = json.Marshal(apiVersion)
		changed = true
	}
	if !changed {
		return item
	}
	out, err := json.Marshal(m)
	if err != nil {
		return item
	}
	return out
}

func splitAPIVersion(av string) (group, version string) {
	if i := strings.LastIndex(av, "/"); i >= 0 {
		return av[:i], av[i+1:]
	}
	return "", av
}

// strictUnmarshal decodes JSON into a typed object; type mismatches are errors
// (the API server would reject them), unknown fields are tolerated as
// kubectl apply does by default.
func strictUnmarshal(j []byte, into any) error {
	dec := json.NewDecoder(bytes.NewReader(j))
	if err := dec.Decode(into); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fmt.Errorf("field %s: cannot use a JSON %s as %s", te.Field, te.Value, te.Type.String())
		}
		return err
	}
	return nil
}
