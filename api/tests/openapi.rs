//! The OpenAPI documents: committed beside their protos (`api/<name>/<version>/openapi.yaml`, as
//! kratos-layout commits its `openapi.yaml`) and equal to what the build generates — `make api`
//! rewrites them (`UPDATE_OPENAPI=1`), a stale one fails here; and every HTTP route of a proto is
//! in its document, once (each `additional_bindings` entry too).

use std::path::Path;

#[test]
fn the_committed_documents_are_what_the_build_generates() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let update = std::env::var("UPDATE_OPENAPI").is_ok_and(|v| v == "1");
    let mut stale = Vec::new();
    for (path, generated) in api::OPENAPI_DOCUMENTS {
        let file = root.join(path);
        if update {
            std::fs::write(&file, generated).unwrap_or_else(|e| panic!("{path}: {e}"));
            continue;
        }
        if std::fs::read_to_string(&file).ok().as_deref() != Some(*generated) {
            stale.push(*path);
        }
    }
    assert!(
        stale.is_empty(),
        "stale or missing OpenAPI documents (run `make api` and commit them): {stale:?}"
    );
}

#[test]
fn every_http_route_of_a_proto_is_one_operation_of_its_document() {
    let pool = api::descriptor_pool();
    let http = pool
        .get_extension_by_name("google.api.http")
        .expect("google.api.http");
    for (path, yaml) in api::OPENAPI_DOCUMENTS {
        let dir = path.trim_end_matches("/openapi.yaml");
        let file = pool
            .files()
            .find(|f| f.name().starts_with(&format!("{dir}/")))
            .unwrap_or_else(|| panic!("no proto for {path}"));
        let mut routes = 0;
        for service in file.services() {
            for method in service
                .methods()
                .filter(|m| m.options().has_extension(&http))
            {
                // The rule, then each additional binding (`_1`, `_2`, …).
                let options = method.options();
                let rule = options.get_extension(&http);
                let more = match rule
                    .as_message()
                    .map(|r| r.get_field_by_name("additional_bindings"))
                {
                    Some(Some(list)) => list.as_list().map_or(0, <[_]>::len),
                    _ => 0,
                };
                for i in 0..=more {
                    routes += 1;
                    let suffix = if i == 0 {
                        String::new()
                    } else {
                        format!("_{i}")
                    };
                    let id = format!(
                        "operationId: \"{}_{}{suffix}\"",
                        service.name(),
                        method.name()
                    );
                    assert_eq!(yaml.matches(&id).count(), 1, "{path}: {id}");
                }
            }
        }
        assert!(routes > 0, "{path}: no route");
        assert_eq!(
            yaml.matches("operationId:").count(),
            routes,
            "{path}: extra operations"
        );
    }
}
