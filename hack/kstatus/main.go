// Command kstatus prints what sigs.k8s.io/cli-utils' kstatus library (the code behind `kubectl wait`-style
// readiness in kpt, Flux and Config Sync) computes for Kubernetes objects.
//
// Input on stdin: a JSON array of objects. Output on stdout: a JSON array, one {"status", "message"} per object,
// in the same order; status is one of InProgress, Failed, Current, Terminating, NotFound, Unknown. An object
// kstatus cannot evaluate gets {"error": "..."} instead, so one bad case does not hide the others.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type result struct {
	Status  string `json:"status,omitempty"`
	Message string `json:"message,omitempty"`
	Error   string `json:"error,omitempty"`
}

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer) error {
	data, err := io.ReadAll(in)
	if err != nil {
		return err
	}
	// apimachinery's decoder, not encoding/json: it keeps whole numbers as int64, which kstatus requires of
	// metadata.generation and status.observedGeneration (as the API server's own decoding does).
	var objects []interface{}
	if err := utiljson.Unmarshal(data, &objects); err != nil {
		return fmt.Errorf("stdin must be a JSON array of Kubernetes objects: %w", err)
	}
	results := make([]result, 0, len(objects))
	for i, item := range objects {
		object, ok := item.(map[string]interface{})
		if !ok {
			return fmt.Errorf("item %d is not a JSON object", i)
		}
		computed, err := status.Compute(&unstructured.Unstructured{Object: object})
		if err != nil {
			results = append(results, result{Error: err.Error()})
			continue
		}
		results = append(results, result{Status: computed.Status.String(), Message: computed.Message})
	}
	encoder := json.NewEncoder(out)
	encoder.SetIndent("", "  ")
	return encoder.Encode(results)
}
