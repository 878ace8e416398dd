// The OpenAPI 3.1 description of /api/v1 (served at /api/v1/openapi.json). The API test checks that
// every route the server answers is described here.
#include "producers/api/pages.h"

namespace leadsync::producers::api {

const char* openapi_document() {
  return R"json({
  "openapi": "3.1.0",
  "info": {
    "title": "leadsync producer API",
    "version": "1",
    "description": "Sync runs and their control (design.md section 6). Statuses: queued, running, completed, failed, cancelled. Errors are RFC 9457 problem details. POSTs need 'Authorization: Bearer <token>' (the token is read from the variable named by api.token_env); on a bind beyond loopback every /api/v1 request does."
  },
  "components": {
    "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
    "parameters": {
      "source": {"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}
    },
    "schemas": {
      "Problem": {
        "type": "object",
        "properties": {"type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                       "detail": {"type": "string"}, "instance": {"type": "string"}}
      },
      "Run": {
        "type": "object",
        "properties": {
          "run_id": {"type": "string"}, "source": {"type": "string"},
          "status": {"enum": ["queued", "running", "completed", "failed", "cancelled"]},
          "trigger": {"enum": ["schedule", "manual", "repair", "full"]},
          "created_at": {"type": ["string", "null"]}, "started_at": {"type": ["string", "null"]},
          "heartbeat_at": {"type": ["string", "null"]}, "finished_at": {"type": ["string", "null"]},
          "progress": {"type": "object", "properties": {"rows_done": {"type": "integer"},
            "rows_total": {"type": ["integer", "null"]}, "percent": {"type": ["number", "null"]},
            "message": {"type": ["string", "null"]}}},
          "counters": {"type": "object", "properties": {"read": {"type": "integer"}, "new": {"type": "integer"},
            "changed": {"type": "integer"}, "unchanged": {"type": "integer"}, "deleted": {"type": "integer"},
            "rejected": {"type": "integer"}, "published": {"type": "integer"}}},
          "applied": {"type": "object", "properties": {"inserted": {"type": "integer"}, "updated": {"type": "integer"},
            "deleted": {"type": "integer"}, "unchanged": {"type": "integer"}, "stale": {"type": "integer"},
            "dead_lettered": {"type": "integer"}, "pending": {"type": "integer"}}},
          "error": {"type": ["string", "null"]}, "checkpoint": {"type": ["string", "null"]},
          "resumed_from": {"type": ["string", "null"]}
        }
      },
      "Source": {
        "type": "object",
        "properties": {
          "source": {"type": "string"}, "kind": {"type": "string"}, "entity": {"type": "string"},
          "schedule_seconds": {"type": "number"}, "paused": {"type": "boolean"},
          "state": {"enum": ["idle", "paused", "queued", "running"]},
          "active_run": {"oneOf": [{"$ref": "#/components/schemas/Run"}, {"type": "null"}]},
          "last_run": {"oneOf": [{"$ref": "#/components/schemas/Run"}, {"type": "null"}]},
          "last_completed_at": {"type": ["string", "null"]},
          "dead_letters": {"$ref": "#/components/schemas/DeadLetterCounts"}
        }
      },
      "DeadLetterCounts": {
        "type": "object",
        "description": "dead letters in the dead-letter topic by error class (permanent, retryable, infrastructure, other); classes with none are absent",
        "additionalProperties": {"type": "integer", "minimum": 0}
      },
      "DeadLetterTopic": {
        "type": "object",
        "description": "the dead-letter topic as counted by the producer: every dead letter retained when it started, and every one written since",
        "properties": {
          "topic": {"type": "string"},
          "unattributed": {"$ref": "#/components/schemas/DeadLetterCounts"},
          "total": {"type": "integer"},
          "caught_up": {"type": "boolean", "description": "false while the producer is still counting what the topic held"},
          "counted_at": {"type": ["string", "null"]},
          "error": {"type": ["string", "null"]}
        }
      },
      "Lag": {
        "type": "object",
        "description": "the workers' consumer group on the main topic and its retry tiers, sampled from the broker every 2 s",
        "properties": {
          "group": {"type": "string"},
          "members": {"type": ["integer", "null"], "description": "consumers in the group; each worker has two (main topic, retry tiers)"},
          "lag": {"type": ["integer", "null"], "description": "messages after the group's committed offsets, summed over the topics"},
          "sampled_at": {"type": ["string", "null"]},
          "error": {"type": ["string", "null"]},
          "topics": {"type": "array", "items": {"type": "object", "properties": {
            "topic": {"type": "string"}, "lag": {"type": "integer"}, "committed": {"type": "integer"},
            "partitions": {"type": "array", "items": {"type": "object", "properties": {
              "partition": {"type": "integer"}, "committed": {"type": ["integer", "null"]},
              "high": {"type": "integer"}, "lag": {"type": "integer"}}}}}}}
        }
      }
    },
    "responses": {
      "Problem": {"description": "a problem", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    }
  },
  "paths": {
    "/api/v1/sources": {
      "get": {"summary": "every configured source with its run state",
              "responses": {"200": {"description": "sources", "content": {"application/json": {"schema": {"type": "object",
                "properties": {"sources": {"type": "array", "items": {"$ref": "#/components/schemas/Source"}},
                               "dead_letter_topic": {"$ref": "#/components/schemas/DeadLetterTopic"}}}}}}}}
    },
    "/api/v1/sources/{name}": {
      "get": {"summary": "one source", "parameters": [{"$ref": "#/components/parameters/source"}],
              "responses": {"200": {"description": "the source", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Source"}}}},
                            "404": {"$ref": "#/components/responses/Problem"}}}
    },
    "/api/v1/sources/{name}/trigger": {
      "post": {"summary": "queue a run for the producer service to start within a second",
               "security": [{"bearer": []}],
               "parameters": [{"$ref": "#/components/parameters/source"},
                 {"name": "full", "in": "query", "schema": {"type": "boolean"}, "description": "ignore any checkpoint"},
                 {"name": "queue", "in": "query", "schema": {"type": "boolean"}, "description": "queue behind a running run instead of answering 409"}],
               "responses": {"202": {"description": "queued"}, "401": {"$ref": "#/components/responses/Problem"},
                             "404": {"$ref": "#/components/responses/Problem"},
                             "409": {"$ref": "#/components/responses/Problem"}}}
    },
    "/api/v1/sources/{name}/pause": {
      "post": {"summary": "stop the source's schedule; a running run stops at its next batch keeping its checkpoint",
               "security": [{"bearer": []}], "parameters": [{"$ref": "#/components/parameters/source"}],
               "responses": {"200": {"description": "paused"}, "401": {"$ref": "#/components/responses/Problem"},
                             "404": {"$ref": "#/components/responses/Problem"}}}
    },
    "/api/v1/sources/{name}/resume": {
      "post": {"summary": "let the schedule run again; the next run continues from the checkpoint",
               "security": [{"bearer": []}], "parameters": [{"$ref": "#/components/parameters/source"}],
               "responses": {"200": {"description": "resumed"}, "401": {"$ref": "#/components/responses/Problem"},
                             "404": {"$ref": "#/components/responses/Problem"}}}
    },
    "/api/v1/sources/{name}/cancel": {
      "post": {"summary": "cancel the queued run and stop the running run at its next batch",
               "security": [{"bearer": []}], "parameters": [{"$ref": "#/components/parameters/source"}],
               "responses": {"202": {"description": "cancel requested"}, "401": {"$ref": "#/components/responses/Problem"},
                             "404": {"$ref": "#/components/responses/Problem"},
                             "409": {"$ref": "#/components/responses/Problem"}}}
    },
    "/api/v1/lag": {
      "get": {"summary": "consumer lag of the workers' group per topic and partition, with its member count",
              "responses": {"200": {"description": "the last sample", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Lag"}}}}}}
    },
    "/api/v1/runs": {
      "get": {"summary": "runs, newest first",
              "parameters": [{"name": "source", "in": "query", "schema": {"type": "string"}},
                             {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 20}}],
              "responses": {"200": {"description": "runs", "content": {"application/json": {"schema": {"type": "object",
                "properties": {"runs": {"type": "array", "items": {"$ref": "#/components/schemas/Run"}}}}}}},
                            "400": {"$ref": "#/components/responses/Problem"},
                            "404": {"$ref": "#/components/responses/Problem"}}}
    },
    "/api/v1/runs/{id}": {
      "get": {"summary": "one run", "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
              "responses": {"200": {"description": "the run", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Run"}}}},
                            "404": {"$ref": "#/components/responses/Problem"}}}
    }
  }
})json";
}

}  // namespace leadsync::producers::api
