package ui

import (
	"fmt"
	"net/http"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/cloudmux/cloudmux/broker/identity"
)

// apiAccess shows the endpoints of the catalog and offers the files
// clients read, for the session's user and project.
func (u *UI) apiAccess(w http.ResponseWriter, r *http.Request) {
	base := identity.BaseURL(r)
	var rows [][2]string
	if u.Keystone.Catalog != nil {
		for _, s := range u.Keystone.Catalog(base) {
			for _, ep := range s.Endpoints {
				if ep.Interface == "public" {
					rows = append(rows, [2]string{s.Type, ep.URL})
				}
			}
		}
	}
	u.render(w, r, http.StatusOK, "apiaccess", view{Title: "API access", Nav: "api", Crumbs: crumbs("API access", ""),
		Data: map[string]any{"Endpoints": rows, "AuthURL": base + "/v3"}})
}

// clientIdentity is who the downloaded files log in as: the session's
// user, on its current project. They never hold a password or token.
func clientIdentity(r *http.Request) (user, userDomain, project string) {
	t := callerOf(r).token
	return t.UserName, t.UserDomainName, t.ProjectName
}

// openrc is a shell file that asks for the password when sourced, as
// Horizon's does.
func (u *UI) openrc(w http.ResponseWriter, r *http.Request) {
	user, udom, project := clientIdentity(r)
	t := callerOf(r).token
	sh := func(v string) string { return "'" + strings.ReplaceAll(v, "'", `'"'"'`) + "'" }
	body := fmt.Sprintf(`#!/usr/bin/env bash
# cloudmux: source this file, then use the openstack CLI.
export OS_AUTH_URL=%s
export OS_IDENTITY_API_VERSION=3
export OS_USERNAME=%s
export OS_USER_DOMAIN_NAME=%s
export OS_PROJECT_ID=%s
export OS_PROJECT_NAME=%s
export OS_PROJECT_DOMAIN_ID=%s
export OS_REGION_NAME=%s
export OS_INTERFACE=public
unset OS_TENANT_ID OS_TENANT_NAME
echo "Please enter your OpenStack password for user $OS_USERNAME on project $OS_PROJECT_NAME: "
read -sr OS_PASSWORD_INPUT
export OS_PASSWORD=$OS_PASSWORD_INPUT
`, sh(identity.BaseURL(r)+"/v3"), sh(user), sh(udom), sh(t.ProjectID), sh(project), sh(t.ProjectDomain), sh(identity.Region))
	download(w, project+"-openrc.sh", "text/x-shellscript", []byte(body))
}

// cloudsYAML is a clouds.yaml entry without a password: the openstack CLI
// asks for it (or add it to a secure.yaml).
func (u *UI) cloudsYAML(w http.ResponseWriter, r *http.Request) {
	user, udom, project := clientIdentity(r)
	t := callerOf(r).token
	out, err := yaml.Marshal(map[string]any{"clouds": map[string]any{"cloudmux": map[string]any{
		"auth": map[string]string{"auth_url": identity.BaseURL(r) + "/v3", "username": user, "user_domain_name": udom,
			"project_id": t.ProjectID, "project_name": project},
		"region_name": identity.Region, "interface": "public", "identity_api_version": 3,
	}}})
	if err != nil {
		u.fail(w, r, err)
		return
	}
	download(w, "clouds.yaml", "application/yaml", out)
}

func download(w http.ResponseWriter, name, typ string, body []byte) {
	w.Header().Set("Content-Type", typ)
	w.Header().Set("Content-Disposition", `attachment; filename="`+strings.ReplaceAll(name, `"`, "")+`"`)
	_, _ = w.Write(body)
}
