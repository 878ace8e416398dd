// Static documents the API serves, compiled into the binary (no files to deploy, no CDN: the
// status page works offline).
#pragma once

namespace leadsync::producers::api {

const char* openapi_document();  // OpenAPI 3.1, JSON
const char* status_page();       // HTML with its script and styles inline

}  // namespace leadsync::producers::api
