package image_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imagedata"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/pagination"
)

func TestListFiltersSortAndPaging(t *testing.T) {
	ctx := context.Background()
	te := newEnv(t, envOpts{}, "alpha", "beta")
	admin := te.admin(t)
	start := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	yes := true
	specs := []struct {
		opts images.CreateOpts
		data int // bytes uploaded; 0 leaves it queued
	}{
		{images.CreateOpts{Name: "delta", DiskFormat: "raw", ContainerFormat: "bare", Tags: []string{"a", "b"}, Properties: map[string]string{"os_distro": "debian"}}, 1000},
		{images.CreateOpts{Name: "alpha", DiskFormat: "ami", ContainerFormat: "bare", Tags: []string{"a"}}, 5000},
		{images.CreateOpts{Name: "charlie", DiskFormat: "raw", ContainerFormat: "ovf", Protected: &yes}, 0},
		{images.CreateOpts{Name: "bravo", DiskFormat: "raw", ContainerFormat: "bare", Properties: map[string]string{"os_distro": "cirros"}}, 3000},
		{images.CreateOpts{Name: "echo", DiskFormat: "vmdk", ContainerFormat: "bare", Tags: []string{"b"}}, 0},
	}
	ids := map[string]string{}
	for i, s := range specs {
		img, err := images.Create(ctx, admin, s.opts).Extract()
		if err != nil {
			t.Fatal(err)
		}
		ids[img.Name] = img.ID
		if s.data > 0 {
			if err := imagedata.Upload(ctx, admin, img.ID, bytes.NewReader(randomBytes(s.data, uint64(i)))).ExtractErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	names := func(imgs []images.Image) []string {
		var out []string
		for _, img := range imgs {
			out = append(out, img.Name)
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		opts  images.ListOpts
		query string // raw extra query, for what ListOpts lacks
		want  []string
	}{
		{"default newest first", images.ListOpts{}, "", []string{"echo", "bravo", "charlie", "alpha", "delta"}},
		{"sort name asc", images.ListOpts{Sort: "name:asc"}, "", []string{"alpha", "bravo", "charlie", "delta", "echo"}},
		{"sort_key and sort_dir", images.ListOpts{SortKey: "name", SortDir: "desc"}, "", []string{"echo", "delta", "charlie", "bravo", "alpha"}},
		{"sort by size then name", images.ListOpts{Sort: "size:asc,name:asc"}, "", []string{"charlie", "echo", "delta", "bravo", "alpha"}},
		{"name", images.ListOpts{Name: "bravo"}, "", []string{"bravo"}},
		{"name in", images.ListOpts{Name: "in:bravo,echo", Sort: "name:asc"}, "", []string{"bravo", "echo"}},
		{"status", images.ListOpts{Status: images.ImageStatusQueued, Sort: "name:asc"}, "", []string{"charlie", "echo"}},
		{"tag", images.ListOpts{Tags: []string{"a"}, Sort: "name:asc"}, "", []string{"alpha", "delta"}},
		{"two tags", images.ListOpts{Tags: []string{"a", "b"}}, "", []string{"delta"}},
		{"disk_format", images.ListOpts{DiskFormat: "raw", Sort: "name:asc"}, "", []string{"bravo", "charlie", "delta"}},
		{"container_format", images.ListOpts{ContainerFormat: "ovf"}, "", []string{"charlie"}},
		{"size range", images.ListOpts{}, "size_min=2000&size_max=4000", []string{"bravo"}}, // gophercloud drops int64 query fields
		{"protected", images.ListOpts{}, "protected=true", []string{"charlie"}},
		{"custom property", images.ListOpts{}, "os_distro=cirros", []string{"bravo"}},
		{"owner", images.ListOpts{Owner: te.Boot.Project.ID, Name: "alpha"}, "", []string{"alpha"}},
		{"visibility shared", images.ListOpts{Visibility: images.ImageVisibilityShared, Name: "delta"}, "", []string{"delta"}},
		{"visibility public", images.ListOpts{Visibility: images.ImageVisibilityPublic}, "", nil},
		{"created since", images.ListOpts{CreatedAtQuery: &images.ImageDateQuery{Date: start, Filter: images.FilterGTE}, Sort: "name:asc"}, "",
			[]string{"alpha", "bravo", "charlie", "delta", "echo"}},
		{"created before", images.ListOpts{CreatedAtQuery: &images.ImageDateQuery{Date: start, Filter: images.FilterLT}}, "", nil},
		{"updated until", images.ListOpts{UpdatedAtQuery: &images.ImageDateQuery{Date: start.Add(time.Hour), Filter: images.FilterLTE}, Name: "echo"}, "", []string{"echo"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := *admin
			pager := images.List(&c, tc.opts)
			if tc.query != "" {
				q, _ := tc.opts.ToImageListQuery()
				if q == "" {
					q = "?"
				} else {
					q += "&"
				}
				pager = images.List(&c, rawQuery(q+tc.query))
			}
			pages, err := pager.AllPages(ctx)
			if err != nil {
				t.Fatal(err)
			}
			got, err := images.ExtractImages(pages)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(names(got), tc.want) {
				t.Fatalf("list = %v, want %v", names(got), tc.want)
			}
		})
	}

	t.Run("paging", func(t *testing.T) {
		var seen []string
		pageSizes := []int{}
		err := images.List(admin, images.ListOpts{Limit: 2, Sort: "name:asc"}).EachPage(ctx, func(_ context.Context, p pagination.Page) (bool, error) {
			imgs, err := images.ExtractImages(p)
			if err != nil {
				return false, err
			}
			pageSizes = append(pageSizes, len(imgs))
			seen = append(seen, names(imgs)...)
			return true, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(seen, []string{"alpha", "bravo", "charlie", "delta", "echo"}) || !slices.Equal(pageSizes, []int{2, 2, 1}) {
			t.Fatalf("pages %v gave %v", pageSizes, seen)
		}
	})

	t.Run("marker and limit edges", func(t *testing.T) {
		for _, tc := range []struct {
			name, query string
			want        []string
		}{
			// The marker is any visible image, not only one the filters keep.
			{"marker outside the filter", "sort=name:asc&status=queued&marker=" + ids["alpha"], []string{"charlie", "echo"}},
			{"marker last", "sort=name:asc&marker=" + ids["echo"], nil},
			{"limit 0 is the cap", "sort=name:asc&limit=0", []string{"alpha", "bravo", "charlie", "delta", "echo"}},
			{"huge limit is the cap", "sort=name:asc&limit=99999999999999999999", []string{"alpha", "bravo", "charlie", "delta", "echo"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				code, _, b := raw(t, admin, http.MethodGet, "images?"+tc.query, "", nil)
				var body struct{ Images []images.Image }
				if err := json.Unmarshal(b, &body); err != nil || code != http.StatusOK {
					t.Fatalf("list = %d %s", code, b)
				}
				if !slices.Equal(names(body.Images), tc.want) {
					t.Fatalf("list = %v, want %v", names(body.Images), tc.want)
				}
			})
		}
	})

	t.Run("first, next and schema fields", func(t *testing.T) {
		code, _, b := raw(t, admin, http.MethodGet, "images?limit=2&sort=name:asc", "", nil)
		var body struct {
			Images              []map[string]any
			First, Next, Schema string
		}
		if err := json.Unmarshal(b, &body); err != nil || code != http.StatusOK {
			t.Fatalf("list = %d %s", code, b)
		}
		if len(body.Images) != 2 || body.Schema != "/v2/schemas/images" || body.First != "/v2/images?limit=2&sort=name%3Aasc" ||
			body.Next != "/v2/images?limit=2&marker="+ids["bravo"]+"&sort=name%3Aasc" {
			t.Fatalf("list body: first %q next %q schema %q, %d images", body.First, body.Next, body.Schema, len(body.Images))
		}
		code, _, b = raw(t, admin, http.MethodGet, "images?limit=10", "", nil)
		if err := json.Unmarshal(b, &body); err != nil || code != http.StatusOK || len(body.Images) != 5 {
			t.Fatalf("list = %d %s", code, b)
		}
		body.Next = ""
		_ = json.Unmarshal(b, &body)
		if body.Next != "" {
			t.Fatalf("the last page links a next one: %q", body.Next)
		}
	})
}

// rawQuery is a ListOptsBuilder for a query ListOpts cannot express.
type rawQuery string

func (q rawQuery) ToImageListQuery() (string, error) { return string(q), nil }
