"""Offline stand-in for @rules_cc//cc:defs.bzl, for Bazel 4.2.3.

Bazel 4 resolves @rules_cc for its own tool repositories and would download it. Debian's
bazel-rules-cc package is too new for Bazel 4 (it needs `use_cpp_toolchain`), so this
repository only re-exports the native rules, which is what rules_cc did in the Bazel 4 era.
A consumer with network access can declare the real rules_cc instead, before weft_deps().
"""

cc_binary = native.cc_binary
cc_import = native.cc_import
cc_library = native.cc_library
cc_proto_library = native.cc_proto_library
cc_shared_library = getattr(native, "cc_shared_library", None)
cc_test = native.cc_test
cc_toolchain = native.cc_toolchain
cc_toolchain_suite = native.cc_toolchain_suite
fdo_prefetch_hints = native.fdo_prefetch_hints
fdo_profile = native.fdo_profile
objc_import = native.objc_import
objc_library = native.objc_library
