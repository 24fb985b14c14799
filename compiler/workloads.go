package compiler

import (
	"encoding/json"
	"errors"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Workload kinds: objects whose pods the EndpointSlice controller would turn
// into endpoints. Load keeps them (Inputs.Workloads) instead of skipping them;
// derive.go expands them into pods.
const (
	KindPod                   = "Pod"
	KindDeployment            = "Deployment"
	KindReplicaSet            = "ReplicaSet"
	KindStatefulSet           = "StatefulSet"
	KindDaemonSet             = "DaemonSet"
	KindReplicationController = "ReplicationController"
	KindJob                   = "Job"
	KindCronJob               = "CronJob"
)

// WorkloadObject is a Pod or a pod-creating workload of the input, decoded
// into its k8s.io/api type (Object is a *v1.Pod, *appsv1.Deployment,
// *appsv1.ReplicaSet, *appsv1.StatefulSet, *appsv1.DaemonSet,
// *v1.ReplicationController, *batchv1.Job or *batchv1.CronJob).
type WorkloadObject struct {
	Kind   string
	Object metav1.Object
	Source Source
}

// Namespace and Name of the workload.
func (w *WorkloadObject) Namespace() string { return w.Object.GetNamespace() }
func (w *WorkloadObject) Name() string      { return w.Object.GetName() }

// String is "Kind ns/name".
func (w *WorkloadObject) String() string {
	return w.Kind + " " + w.Namespace() + "/" + w.Name()
}

// workloadKind returns the Go type for a workload apiVersion/kind, or nil.
func workloadKind(group, version, kind string) func() metav1.Object {
	switch {
	case group == "" && version == "v1" && kind == KindPod:
		return func() metav1.Object { return &v1.Pod{} }
	case group == "" && version == "v1" && kind == KindReplicationController:
		return func() metav1.Object { return &v1.ReplicationController{} }
	case group == "apps" && version == "v1" && kind == KindDeployment:
		return func() metav1.Object { return &appsv1.Deployment{} }
	case group == "apps" && version == "v1" && kind == KindReplicaSet:
		return func() metav1.Object { return &appsv1.ReplicaSet{} }
	case group == "apps" && version == "v1" && kind == KindStatefulSet:
		return func() metav1.Object { return &appsv1.StatefulSet{} }
	case group == "apps" && version == "v1" && kind == KindDaemonSet:
		return func() metav1.Object { return &appsv1.DaemonSet{} }
	case group == "batch" && version == "v1" && kind == KindJob:
		return func() metav1.Object { return &batchv1.Job{} }
	case group == "batch" && version == "v1" && kind == KindCronJob:
		return func() metav1.Object { return &batchv1.CronJob{} }
	}
	return nil
}

// addWorkload keeps a workload document (or flattens a typed list of them,
// e.g. a DeploymentList). handled is false for any other kind.
func (in *Inputs) addWorkload(j []byte, tm typeMeta, src Source, depth int) (handled bool, err error) {
	group, version := splitAPIVersion(tm.APIVersion)
	if n := len(tm.Kind); n > 4 && tm.Kind[n-4:] == "List" {
		itemKind := tm.Kind[:n-4]
		if workloadKind(group, version, itemKind) == nil {
			return false, nil
		}
		if depth >= maxListDepth {
			return true, &InputError{Source: src, Object: tm.Kind, Err: errors.New("Lists nested too deeply")}
		}
		var items []json.RawMessage
		if len(tm.Items) > 0 && string(tm.Items) != "null" {
			if err := json.Unmarshal(tm.Items, &items); err != nil {
				return true, &InputError{Source: src, Object: tm.Kind, Err: fmt.Errorf("items: %v", err)}
			}
		}
		for _, item := range items {
			if err := in.addJSON(withDefaultKind(item, tm.APIVersion, itemKind), src, depth+1); err != nil {
				return true, err
			}
		}
		return true, nil
	}
	newObj := workloadKind(group, version, tm.Kind)
	if newObj == nil {
		return false, nil
	}
	obj := newObj()
	if err := strictUnmarshal(j, obj); err != nil {
		return true, &InputError{Source: src, Object: tm.Kind + " " + objectName(j), Err: err}
	}
	in.Workloads = append(in.Workloads, &WorkloadObject{Kind: tm.Kind, Object: obj, Source: src})
	return true, nil
}

// workloadShape is what derivation needs from a workload: its pod template,
// how many pods it runs and how they are named.
type workloadShape struct {
	// template is the pod template (for a Pod: its own metadata and spec).
	template *v1.PodTemplateSpec
	// selector selects the workload's pods (nil for Pod, Job and CronJob).
	selector labels.Selector
	// replicas is the number of pods (DaemonSet: -1, one per eligible node).
	replicas int
	// ordinalStart is a StatefulSet's .spec.ordinals.start.
	ordinalStart int
	// serviceName is a StatefulSet's governing Service (its pods' subdomain).
	serviceName string
	// jobName labels the pods of a Job or CronJob (batch.kubernetes.io/job-name).
	jobName string
	// pod is set for a Pod object.
	pod *v1.Pod
}

func replicasOr1(p *int32) int {
	if p == nil {
		return 1
	}
	return int(*p)
}

// jobActivePods is how many pods of a Job run at once: parallelism (default
// 1), at most completions, none while suspended.
func jobActivePods(spec *batchv1.JobSpec) int {
	if spec.Suspend != nil && *spec.Suspend {
		return 0
	}
	n := replicasOr1(spec.Parallelism)
	if spec.Completions != nil && int(*spec.Completions) < n {
		n = int(*spec.Completions)
	}
	return n
}

// shape returns the workload's template and replica count, validating what
// the API server would reject and derivation relies on.
func (w *WorkloadObject) shape() (*workloadShape, error) {
	var fe fieldErrors
	sh := &workloadShape{}
	selectorFrom := func(ls *metav1.LabelSelector, required bool) {
		if ls == nil {
			if required {
				fe.add("spec.selector", "required")
			}
			return
		}
		sel, err := metav1.LabelSelectorAsSelector(ls)
		if err != nil {
			fe.add("spec.selector", "%v", err)
			return
		}
		if sel.Empty() {
			fe.add("spec.selector", "empty selector is invalid for a workload")
			return
		}
		sh.selector = sel
	}
	switch o := w.Object.(type) {
	case *v1.Pod:
		sh.pod = o
		sh.template = &v1.PodTemplateSpec{ObjectMeta: o.ObjectMeta, Spec: o.Spec}
		sh.replicas = 1
	case *appsv1.Deployment:
		sh.template = &o.Spec.Template
		sh.replicas = replicasOr1(o.Spec.Replicas)
		selectorFrom(o.Spec.Selector, true)
	case *appsv1.ReplicaSet:
		sh.template = &o.Spec.Template
		sh.replicas = replicasOr1(o.Spec.Replicas)
		selectorFrom(o.Spec.Selector, true)
	case *appsv1.StatefulSet:
		sh.template = &o.Spec.Template
		sh.replicas = replicasOr1(o.Spec.Replicas)
		sh.serviceName = o.Spec.ServiceName
		if o.Spec.Ordinals != nil {
			sh.ordinalStart = int(o.Spec.Ordinals.Start)
			if sh.ordinalStart < 0 {
				fe.add("spec.ordinals.start", "must be greater than or equal to 0")
			}
		}
		if sh.serviceName != "" {
			checkDNSLabel(&fe, "spec.serviceName", sh.serviceName)
		}
		selectorFrom(o.Spec.Selector, true)
	case *appsv1.DaemonSet:
		sh.template = &o.Spec.Template
		sh.replicas = -1
		selectorFrom(o.Spec.Selector, true)
	case *v1.ReplicationController:
		if o.Spec.Template == nil {
			fe.add("spec.template", "required")
			return nil, fe.err()
		}
		sh.template = o.Spec.Template
		sh.replicas = replicasOr1(o.Spec.Replicas)
		// An empty RC selector defaults to the template's labels.
		if len(o.Spec.Selector) > 0 {
			sh.selector = labels.SelectorFromSet(o.Spec.Selector)
		} else {
			sh.selector = labels.SelectorFromSet(o.Spec.Template.Labels)
		}
	case *batchv1.Job:
		sh.template = &o.Spec.Template
		sh.replicas = jobActivePods(&o.Spec)
		sh.jobName = o.Name
	case *batchv1.CronJob:
		sh.template = &o.Spec.JobTemplate.Spec.Template
		sh.replicas = jobActivePods(&o.Spec.JobTemplate.Spec)
		if o.Spec.Suspend != nil && *o.Spec.Suspend {
			sh.replicas = 0
		}
		// The Job a CronJob runs is named <cronjob>-<scheduled time in minutes>.
		sh.jobName = fmt.Sprintf("%s-%d", o.Name, 29000000+stableHash("cronjob", w.Namespace(), o.Name)%1000000)
	default:
		return nil, fmt.Errorf("unsupported workload type %T", w.Object)
	}
	if sh.replicas < -1 || (sh.replicas < 0 && w.Kind != KindDaemonSet) {
		fe.add("spec.replicas", "must be greater than or equal to 0")
	}
	if w.Kind != KindPod {
		checkLabels(&fe, "spec.template.metadata.labels", sh.template.Labels)
		if sh.selector != nil && !sh.selector.Matches(labels.Set(sh.template.Labels)) {
			fe.add("spec.template.metadata.labels", "`selector` does not match template `labels`")
		}
	}
	podSpecFieldErrors(&fe, w.Kind, &sh.template.Spec)
	return sh, fe.err()
}

// validateWorkload checks the names and the pod template fields that reach an
// EndpointSlice (labels, container ports, host network, node and host names).
func validateWorkload(w *WorkloadObject) error {
	var fe fieldErrors
	checkDNSSubdomain(&fe, "metadata.name", w.Name())
	checkDNSLabel(&fe, "metadata.namespace", w.Namespace())
	checkLabels(&fe, "metadata.labels", w.Object.GetLabels())
	if err := fe.err(); err != nil {
		return err
	}
	_, err := w.shape()
	return err
}

func checkLabels(fe *fieldErrors, path string, l map[string]string) {
	for k, v := range l {
		for _, msg := range validation.IsQualifiedName(k) {
			fe.add(path, "invalid label key %q: %s", k, msg)
		}
		for _, msg := range validation.IsValidLabelValue(v) {
			fe.add(path+"["+k+"]", "invalid label value %q: %s", v, msg)
		}
	}
}

// podSpecFieldErrors validates a pod spec's fields derivation uses.
func podSpecFieldErrors(fe *fieldErrors, kind string, spec *v1.PodSpec) {
	prefix := "spec."
	if kind != KindPod {
		prefix = "spec.template.spec."
		if kind == KindCronJob {
			prefix = "spec.jobTemplate.spec.template.spec."
		}
	}
	if len(spec.Containers) == 0 {
		fe.add(prefix+"containers", "required")
	}
	check := func(path string, cs []v1.Container) {
		for i, c := range cs {
			for j := range c.Ports {
				p := &c.Ports[j]
				pp := fmt.Sprintf("%s%s[%d].ports[%d]", prefix, path, i, j)
				if p.Name != "" {
					for _, msg := range validation.IsValidPortName(p.Name) {
						fe.add(pp+".name", "invalid value %q: %s", p.Name, msg)
					}
				}
				checkPort(fe, pp+".containerPort", p.ContainerPort)
				if p.Protocol != "" {
					checkProtocol(fe, pp+".protocol", p.Protocol)
				}
			}
		}
	}
	check("containers", spec.Containers)
	check("initContainers", spec.InitContainers)
	if spec.NodeName != "" {
		checkDNSSubdomain(fe, prefix+"nodeName", spec.NodeName)
	}
	if spec.Hostname != "" {
		checkDNSLabel(fe, prefix+"hostname", spec.Hostname)
	}
	if spec.Subdomain != "" {
		checkDNSLabel(fe, prefix+"subdomain", spec.Subdomain)
	}
	checkLabels(fe, prefix+"nodeSelector", spec.NodeSelector)
}

// defaultPodSpec applies the pod defaults derivation depends on: container
// port protocol TCP.
func defaultPodSpec(spec *v1.PodSpec) {
	for _, cs := range [][]v1.Container{spec.Containers, spec.InitContainers} {
		for i := range cs {
			for j := range cs[i].Ports {
				if cs[i].Ports[j].Protocol == "" {
					cs[i].Ports[j].Protocol = v1.ProtocolTCP
				}
			}
		}
	}
}
