//! Compiles every proto with `protox` (no system `protoc`) and generates, per package:
//!
//! - prost messages and tonic clients/servers (`<package>.rs`, by `tonic-prost-build`);
//! - `<package>.kit.rs`: the HTTP routes of every `google.api.http` annotation (the equivalent of
//!   kratos' `protoc-gen-go-http`) and, for kratos `errors.proto` enums, each reason's HTTP code;
//! - `<package>.openapi.yaml`: the OpenAPI 3 document of its services (`build/openapi.rs`),
//!   committed beside the proto by `make api`;
//! - `descriptor.bin`: the encoded descriptor set, for gRPC reflection and the JSON transcoder;
//! - `modules.rs`: one Rust module per proto file's directory (`stock/v1/stock.proto` →
//!   `api::stock::v1`), so adding a service adds a proto file and edits nothing here.
//!
//! Why our own generator and not `tonic-rest-build`: the routes must copy DTM's query parameters
//! into `dtm-*` metadata, answer with our one error table (425 ↔ FailedPrecondition) and kratos
//! error bodies, and follow the proto3 JSON mapping; the generated code is ~20 lines per method on
//! top of `kit::transcode`, while `prost-reflect` (already used by protox) does the JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use prost_reflect::{
    DescriptorPool, DynamicMessage, EnumDescriptor, MethodDescriptor, ServiceDescriptor, Value,
};

#[path = "build/comments.rs"]
mod comments;
#[path = "build/openapi.rs"]
mod openapi;
#[path = "build/yaml.rs"]
mod yaml;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    println!("cargo:rerun-if-changed=.");
    println!("cargo:rerun-if-changed=../third_party");

    // Our protos: every `.proto` below this crate (`<name>/<version>/<file>.proto`); everything
    // else is an import from third_party.
    let mut protos = Vec::new();
    find_protos(Path::new("."), &mut protos)?;
    protos.sort();
    let protos: Vec<&str> = protos.iter().map(String::as_str).collect();
    let protos = protos.as_slice();

    let mut compiler = protox::Compiler::new([".", "../third_party"])?;
    compiler.include_imports(true).include_source_info(true);
    compiler.open_files(protos)?;
    std::fs::write(
        out_dir.join("descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;

    // Only our files get Rust code: imports are options (google.api, errors) or well-known types.
    let mut fds = compiler.file_descriptor_set();
    fds.file.retain(|f| protos.contains(&f.name()));
    tonic_prost_build::configure()
        .emit_rerun_if_changed(false)
        .codec_path("::kit::codec::ProstCodec")
        .compile_fds(fds)?;

    let pool = compiler.descriptor_pool();
    let mut per_package: BTreeMap<String, String> = BTreeMap::new();
    for file in pool.files().filter(|f| protos.contains(&f.name())) {
        let code = per_package
            .entry(file.package_name().to_owned())
            .or_default();
        for service in file.services() {
            code.push_str(&http_router(&pool, &service)?);
        }
        for reason in file.enums() {
            code.push_str(&error_reason(&pool, &reason));
        }
        std::fs::write(
            out_dir.join(format!("{}.openapi.yaml", file.package_name())),
            openapi::document(&pool, &file)?,
        )?;
    }
    for (package, code) in per_package {
        std::fs::write(out_dir.join(format!("{package}.kit.rs")), code)?;
    }
    std::fs::write(out_dir.join("modules.rs"), modules(&pool, protos)?)?;
    Ok(())
}

/// Collects the `.proto` files below `dir` as paths relative to this crate
/// (`stock/v1/stock.proto`).
fn find_protos(dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            find_protos(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            let relative = path.strip_prefix(".").unwrap_or(&path);
            out.push(relative.to_string_lossy().replace('\\', "/"));
        }
    }
    Ok(())
}

/// `pub mod <name> { pub mod <version> { … } }` for every proto file, including its generated
/// code; documented by package and services, as `missing_docs` wants.
fn modules(pool: &DescriptorPool, protos: &[&str]) -> Result<String, String> {
    let mut tree: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut documents = Vec::new();
    for name in protos {
        let file = pool
            .get_file_by_name(name)
            .ok_or_else(|| format!("{name} is not in the descriptor pool"))?;
        let (dir, version) = match name.split('/').collect::<Vec<_>>()[..] {
            [dir, version, _] => (dir.to_owned(), version.to_owned()),
            _ => return Err(format!("{name}: expected <name>/<version>/<file>.proto")),
        };
        let package = file.package_name();
        let services: Vec<String> = file.services().map(|s| format!("`{}`", s.name())).collect();
        let doc = if services.is_empty() {
            format!("`{package}` ({name})")
        } else {
            format!("`{package}` ({name}): {}", services.join(", "))
        };
        tree.entry(dir.clone()).or_default().push(format!(
            "    #[doc = {doc:?}]\n    pub mod {version} {{\n        #![allow(missing_docs)]\n        \
             tonic::include_proto!({package:?});\n        \
             include!(concat!(env!(\"OUT_DIR\"), \"/{package}.kit.rs\"));\n        \
             /// The OpenAPI 3 document of this package's HTTP API (YAML).\n        \
             pub const OPENAPI_YAML: &str = include_str!(concat!(env!(\"OUT_DIR\"), \"/{package}.openapi.yaml\"));\n    }}\n"
        ));
        documents.push(format!(
            "    (\"{dir}/{version}/openapi.yaml\", {dir}::{version}::OPENAPI_YAML),\n"
        ));
    }
    let mut out = format!(
        "/// Every package's OpenAPI document, by where it is committed (relative to `api/`).\n\
         pub const OPENAPI_DOCUMENTS: &[(&str, &str)] = &[\n{}];\n",
        documents.concat()
    );
    for (dir, versions) in tree {
        let doc = format!("The `{dir}` protos, one module per version.");
        writeln!(
            out,
            "#[doc = {doc:?}]\npub mod {dir} {{\n{}}}",
            versions.concat()
        )
        .map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// One `google.api.http` binding of a method.
struct Binding {
    verb: &'static str,
    path: String,
    body: String,
}

/// Generates `register_<service>_http_server`, which adds one axum route per annotated method.
fn http_router(pool: &DescriptorPool, service: &ServiceDescriptor) -> Result<String, String> {
    let snake = snake_case(service.name());
    let mut consts = String::new();
    let mut routes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for method in service.methods() {
        for (i, b) in bindings(pool, &method)?.into_iter().enumerate() {
            // The rule's own binding, then its additional_bindings as `_1`, `_2`, ….
            let mut rule = format!("HTTP_{}", snake_case(method.name()).to_uppercase());
            if i > 0 {
                write!(rule, "_{i}").map_err(|e| e.to_string())?;
            }
            let params = path_params(&b.path);
            writeln!(
            consts,
            "/// An HTTP binding of `{op}`.\npub const {rule}: ::kit::transcode::HttpRule = ::kit::transcode::HttpRule {{\n    \
             operation: \"/{svc}/{m}\",\n    method: \"{verb}\",\n    path: \"{path}\",\n    input: \"{input}\",\n    \
             output: \"{output}\",\n    body: \"{body}\",\n    path_params: &[{params}],\n}};",
            op = method.full_name(),
            svc = service.full_name(),
            m = method.name(),
            verb = b.verb.to_uppercase(),
            path = b.path,
            input = method.input().full_name(),
            output = method.output().full_name(),
            body = b.body,
            params = params.iter().map(|p| format!("\"{p}\"")).collect::<Vec<_>>().join(", "),
        )
        .map_err(|e| e.to_string())?;
            routes.entry(b.path).or_default().push(format!(
            "::axum::routing::{verb}({{\n            let svc = svc.clone();\n            move |req: ::axum::extract::Request| async move {{\n                \
             ::kit::transcode::unary(crate::descriptor_pool(), &{rule}, req, |r| async move {{ svc.{m}(r).await }}).await\n            }}\n        }})",
            verb = b.verb,
            m = snake_case(method.name()),
        ));
        }
    }
    if routes.is_empty() {
        return Ok(String::new());
    }
    let mut out = consts;
    writeln!(
        out,
        "/// Adds the HTTP routes of `{full}` (from its google.api.http annotations) to `router`.\n\
         pub fn register_{snake}_http_server<S: {snake}_server::{name}>(\n    router: ::axum::Router,\n    svc: ::std::sync::Arc<S>,\n) -> ::axum::Router {{\n    router",
        full = service.full_name(),
        name = service.name(),
    )
    .map_err(|e| e.to_string())?;
    for (path, handlers) in routes {
        // Several verbs on one path form one MethodRouter: `get(..).merge(post(..))`.
        let merged = handlers.join("\n        .merge(");
        let closing = ")".repeat(handlers.len() - 1);
        writeln!(
            out,
            "        .route(\n        \"{path}\",\n        {merged}{closing},\n    )"
        )
        .map_err(|e| e.to_string())?;
    }
    out.push_str("}\n");
    Ok(out)
}

/// Reads the `google.api.http` option of a method: its rule, then each of its
/// `additional_bindings`; only the forms we can serve are accepted.
fn bindings(pool: &DescriptorPool, method: &MethodDescriptor) -> Result<Vec<Binding>, String> {
    let ext = pool
        .get_extension_by_name("google.api.http")
        .ok_or("google/api/annotations.proto is not imported")?;
    let options = method.options();
    if !options.has_extension(&ext) {
        return Ok(Vec::new());
    }
    let rule = options.get_extension(&ext);
    let Value::Message(rule) = rule.as_ref() else {
        return Err(format!(
            "{}: google.api.http is not a message",
            method.full_name()
        ));
    };
    let mut out = vec![rule_binding(method, rule)?];
    if let Some(Value::List(more)) = rule.get_field_by_name("additional_bindings").as_deref() {
        for more in more {
            if let Value::Message(more) = more {
                out.push(rule_binding(method, more)?);
            }
        }
    }
    Ok(out)
}

/// One `google.api.HttpRule`: a verb with a `{field}` path template, body `*` or none.
fn rule_binding(method: &MethodDescriptor, rule: &DynamicMessage) -> Result<Binding, String> {
    let text = |name: &str| match rule.get_field_by_name(name).as_deref() {
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    };
    let (verb, path) = ["get", "post", "put", "delete", "patch"]
        .into_iter()
        .map(|v| (v, text(v)))
        .find(|(_, p)| !p.is_empty())
        .ok_or_else(|| {
            format!(
                "{}: only get/post/put/delete/patch bindings are supported",
                method.full_name()
            )
        })?;
    let body = text("body");
    if !(body.is_empty() || body == "*") {
        return Err(format!(
            "{}: body must be \"*\" or empty",
            method.full_name()
        ));
    }
    if path.contains('=') || path.contains(':') || path.contains('*') {
        return Err(format!(
            "{}: path {path}: only `{{field}}` templates are supported",
            method.full_name()
        ));
    }
    Ok(Binding { verb, path, body })
}

/// Generates `code()` and `error()` for a kratos-style error reason enum.
fn error_reason(pool: &DescriptorPool, reason: &EnumDescriptor) -> String {
    let (Some(default_ext), Some(code_ext)) = (
        pool.get_extension_by_name("errors.default_code"),
        pool.get_extension_by_name("errors.code"),
    ) else {
        return String::new();
    };
    let options = reason.options();
    if !options.has_extension(&default_ext) {
        return String::new();
    }
    let int = |v: &Value| v.as_i32().unwrap_or(500);
    let default_code = int(&options.get_extension(&default_ext));
    let mut arms = String::new();
    for value in reason.values() {
        let opts = value.options();
        let code = if opts.has_extension(&code_ext) {
            int(&opts.get_extension(&code_ext))
        } else {
            default_code
        };
        // prost drops the enum's own name when it prefixes a value (ERROR_REASON_UNSPECIFIED).
        let prefix = format!("{}_", snake_case(reason.name()).to_uppercase());
        let variant = pascal_case(value.name().strip_prefix(&prefix).unwrap_or(value.name()));
        let _ = writeln!(arms, "            Self::{variant} => {code},");
    }
    format!(
        "impl {name} {{\n    /// The HTTP code of this reason (kratos errors.proto `code`, else `default_code`).\n    \
         pub fn code(self) -> u16 {{\n        match self {{\n{arms}        }}\n    }}\n\n    \
         /// A kratos error with this reason and its code.\n    \
         pub fn error(self, message: impl Into<String>) -> ::kit::Error {{\n        \
         ::kit::Error::new(self.code(), self.as_str_name(), message)\n    }}\n}}\n",
        name = reason.name(),
    )
}

/// The `{name}` variables of a path template, in order.
fn path_params(path: &str) -> Vec<String> {
    path.split('{')
        .skip(1)
        .filter_map(|s| s.split_once('}').map(|(p, _)| p.to_owned()))
        .collect()
}

/// `TransOutCompensate` → `trans_out_compensate` (the case tonic uses for method names).
fn snake_case(s: &str) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// `INSUFFICIENT_STOCK` → `InsufficientStock` (the case prost uses for enum variants).
fn pascal_case(s: &str) -> String {
    s.split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_string() + &c.as_str().to_lowercase())
                .unwrap_or_default()
        })
        .collect()
}
