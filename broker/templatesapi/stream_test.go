package templatesapi

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/templates/deploy"
)

// TestStreamWaitsForTheFinalEvent: the engine saves a settled status
// before the run's final event, so a follower reading the status in
// between must wait for that event rather than end the stream without
// it (the CLI printed a delete without its "deleted" line).
func TestStreamWaitsForTheFinalEvent(t *testing.T) {
	ae := newAPIEnv(t)
	alice := ae.token(t, "alice", "shop", identity.RoleMember)
	ae.do(t, alice, "POST", "/v1/templates/web/versions", webTemplate, nil)
	var created struct{ Deployment deploymentView }
	if code := ae.do(t, alice, "POST", "/v1/deployments", `{"name": "s", "template": "web@1"}`, &created); code != 202 {
		t.Fatalf("create: %d", code)
	}
	id := created.Deployment.ID
	if _, status := ae.stream(t, alice, id); status != "COMPLETE" {
		t.Fatalf("apply: %s", status)
	}

	// A run's outcome saved, its final event not yet written: what a
	// follower sees between the two writes of a delete.
	kv, err := ae.Store.Get(ae.Ctx, "deploy/deployments/"+id)
	if err != nil {
		t.Fatal(err)
	}
	var d deploy.Deployment
	if err := json.Unmarshal(kv.Value, &d); err != nil {
		t.Fatal(err)
	}
	d.Status = deploy.StatusDeleted
	b, _ := json.Marshal(d)
	if _, err := ae.Store.Put(ae.Ctx, "deploy/deployments/"+id, b); err != nil {
		t.Fatal(err)
	}
	evs, _, err := ae.api.Engine.Events(ae.Ctx, id, 0)
	if err != nil || len(evs) == 0 || !evs[len(evs)-1].Final {
		t.Fatalf("the apply's events %+v (%v): want the last one final", evs, err)
	}
	last := evs[len(evs)-1].Seq

	req, _ := http.NewRequestWithContext(ae.Ctx, http.MethodGet, ae.Server.URL+"/v1/deployments/"+id+"/events?after="+fmt.Sprint(last), nil)
	req.Header.Set("X-Auth-Token", alice)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// The stream is open (headers sent) and has nothing to send yet: now
	// the final event lands.
	final, _ := json.Marshal(deploy.Event{Seq: last + 1, Action: "deleted", Status: string(deploy.StatusDeleted), Final: true})
	if _, err := ae.Store.Put(ae.Ctx, fmt.Sprintf("deploy/events/%s/%012d", id, last+1), final); err != nil {
		t.Fatal(err)
	}
	var got []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if e, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
			got = append(got, e)
		}
	}
	if strings.Join(got, " ") != "deleted end" {
		t.Fatalf("stream events %v, want [deleted end]", got)
	}
}
