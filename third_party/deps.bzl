"""External repositories of weft, for weft itself and for workspaces that depend on it.

Usage, in weft's WORKSPACE:
    load("//third_party:deps.bzl", "weft_deps")
    weft_deps()
and in a consumer's WORKSPACE (see examples/consumer/WORKSPACE):
    local_repository(name = "weft", path = "...")   # or http_archive / git_repository
    load("@weft//third_party:deps.bzl", "weft_deps")
    weft_deps()

Everything is local, because this platform reaches no network but Debian's apt (Bazel
4.2.3 from bazel-bootstrap; see tools/setup.sh for the packages):
- rules_cc, remote_coverage_tools: tiny shims in third_party/ for the tool repositories Bazel 4
  would otherwise download; rules_java: Debian's bazel-rules-java.
- com_google_absl, com_google_googletest, com_github_google_benchmark, oneTBB, openssl, zlib:
  wrappers over the Debian -dev packages, under the repository names and target labels
  the upstream projects use.

weft_deps() declares a repository only if the WORKSPACE has not declared that name yet, so a
consumer with network access swaps in the real projects by declaring them (e.g. http_archive
named com_google_absl) before calling weft_deps(); weft's BUILD files do not change.

Paths inside weft are resolved with Label(), relative to this file's repository, so they are
right both when weft is the main workspace and when it is the external repository @weft.
"""

load(":absl.bzl", "system_absl")

def _local_dir_impl(rctx):
    # The directory holding the marker file, linked entry by entry into the repository.
    source = rctx.path(rctx.attr.marker).dirname
    for entry in source.readdir():
        rctx.symlink(entry, entry.basename)

_local_dir_repository = repository_rule(
    implementation = _local_dir_impl,
    doc = "A local_repository whose path is the directory of a label, so it works from @weft.",
    attrs = {"marker": attr.label(mandatory = True, allow_single_file = True)},
    local = True,
)

def _system_library_impl(rctx):
    rctx.symlink(rctx.attr.build_file, "BUILD.bazel")
    rctx.file("WORKSPACE", 'workspace(name = "%s")\n' % rctx.name)

_system_library = repository_rule(
    implementation = _system_library_impl,
    doc = "A repository with only a BUILD file, whose targets link system libraries.",
    attrs = {"build_file": attr.label(mandatory = True, allow_single_file = True)},
    local = True,
)

def _maybe(rule, name, **kwargs):
    if not native.existing_rule(name):
        rule(name = name, **kwargs)

def weft_deps():
    """Declares every external repository weft's BUILD files and Bazel 4 need."""

    # Bazel's own tool repositories.
    _maybe(
        _local_dir_repository,
        name = "rules_cc",
        marker = Label("//third_party/rules_cc:WORKSPACE"),
    )
    _maybe(
        native.local_repository,
        name = "rules_java",
        path = "/usr/share/bazel/rules/java",
    )
    _maybe(
        _local_dir_repository,
        name = "remote_coverage_tools",
        marker = Label("//third_party/remote_coverage_tools:WORKSPACE"),
    )

    # System libraries, under their upstream repository names.
    _maybe(system_absl, name = "com_google_absl")
    _maybe(
        _system_library,
        name = "com_google_googletest",
        build_file = Label("//third_party:gtest.BUILD"),
    )
    _maybe(
        _system_library,
        name = "com_github_google_benchmark",
        build_file = Label("//third_party:benchmark.BUILD"),
    )
    _maybe(
        _system_library,
        name = "oneTBB",
        build_file = Label("//third_party:tbb.BUILD"),
    )
    _maybe(
        _system_library,
        name = "openssl",
        build_file = Label("//third_party:openssl.BUILD"),
    )
    _maybe(
        _system_library,
        name = "zlib",
        build_file = Label("//third_party:zlib.BUILD"),
    )
