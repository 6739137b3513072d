# The Kubernetes protobuf messages leasehold speaks (Lease, WatchEvent,
# Status, runtime.Unknown), generated at build time from the .proto files of
# the k8s.io/api and k8s.io/apimachinery Go modules that testenv/go.mod
# requires. Nothing generated is committed.
#
# The modules are located with `go mod download -json` run in testenv/
# (it prints each module's Dir in the Go module cache, downloading it first
# if needed), so the versions are exactly testenv/go.mod's. protoc (Debian's
# protobuf-compiler) writes lite C++ (libprotobuf-lite: no descriptors or
# reflection; unknown fields are kept) into ${CMAKE_BINARY_DIR}/kubeproto.
#
# Sets LEASEHOLD_KUBE_PROTO_SOURCES and LEASEHOLD_KUBE_PROTO_INCLUDE_DIR, and
# the target leasehold_kube_proto_gen that generates them.
find_package(Protobuf REQUIRED)
find_program(LEASEHOLD_GO go PATHS /usr/local/go/bin)
if(NOT LEASEHOLD_GO)
  message(FATAL_ERROR "LEASEHOLD_PROTOBUF=ON needs Go to locate the k8s.io/api .proto files "
                      "(or configure with -DLEASEHOLD_PROTOBUF=OFF for JSON only)")
endif()
set(_kp_versions_from ${PROJECT_SOURCE_DIR}/testenv/go.mod)
file(STRINGS ${_kp_versions_from} _kp_lines REGEX "^[ \t]*k8s\\.io/(api|apimachinery) v")
set(_kp_modules "")
foreach(_l ${_kp_lines})
  string(REGEX MATCH "k8s\\.io/(api|apimachinery) (v[^ \t]+)" _m "${_l}")
  list(APPEND _kp_modules "k8s.io/${CMAKE_MATCH_1}@${CMAKE_MATCH_2}")
endforeach()
list(REMOVE_DUPLICATES _kp_modules)
list(LENGTH _kp_modules _kp_n)
if(NOT _kp_n EQUAL 2)
  message(FATAL_ERROR "${_kp_versions_from}: expected one require each of k8s.io/api and k8s.io/apimachinery, "
                      "found: ${_kp_modules}")
endif()
execute_process(COMMAND ${LEASEHOLD_GO} mod download -json ${_kp_modules}
                WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}/testenv
                OUTPUT_VARIABLE _kp_json ERROR_VARIABLE _kp_err RESULT_VARIABLE _kp_rc)
if(NOT _kp_rc EQUAL 0)
  message(FATAL_ERROR "go mod download -json ${_kp_modules} (in testenv/) failed: ${_kp_err}${_kp_json}")
endif()
# The output is one JSON object per module, concatenated.
string(REGEX MATCHALL "\"Dir\": \"[^\"]+\"" _kp_dirs "${_kp_json}")
foreach(_d ${_kp_dirs})
  string(REGEX REPLACE "\"Dir\": \"([^\"]+)\"" "\\1" _d "${_d}")
  if(_d MATCHES "/k8s\\.io/api@")
    set(LEASEHOLD_K8S_API_DIR ${_d})
  elseif(_d MATCHES "/k8s\\.io/apimachinery@")
    set(LEASEHOLD_K8S_APIMACHINERY_DIR ${_d})
  endif()
endforeach()
set(_kp_protos
  k8s.io/api/coordination/v1/generated.proto
  k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto
  k8s.io/apimachinery/pkg/runtime/generated.proto
  k8s.io/apimachinery/pkg/runtime/schema/generated.proto)
set(_kp_inputs "")
foreach(_p ${_kp_protos})
  string(REGEX REPLACE "^k8s\\.io/api/" "${LEASEHOLD_K8S_API_DIR}/" _f "${_p}")
  string(REGEX REPLACE "^k8s\\.io/apimachinery/" "${LEASEHOLD_K8S_APIMACHINERY_DIR}/" _f "${_f}")
  if(NOT EXISTS ${_f})
    message(FATAL_ERROR "${_f} not found (from go mod download -json ${_kp_modules})")
  endif()
  list(APPEND _kp_inputs ${_f})
endforeach()
message(STATUS "Kubernetes .proto files: ${LEASEHOLD_K8S_API_DIR}, ${LEASEHOLD_K8S_APIMACHINERY_DIR}")

set(LEASEHOLD_KUBE_PROTO_INCLUDE_DIR ${CMAKE_BINARY_DIR}/kubeproto)
set(LEASEHOLD_KUBE_PROTO_SOURCES "")
set(_kp_outputs "")
foreach(_p ${_kp_protos})
  string(REGEX REPLACE "\\.proto$" "" _stem "${_p}")
  list(APPEND LEASEHOLD_KUBE_PROTO_SOURCES ${LEASEHOLD_KUBE_PROTO_INCLUDE_DIR}/${_stem}.pb.cc)
  list(APPEND _kp_outputs ${LEASEHOLD_KUBE_PROTO_INCLUDE_DIR}/${_stem}.pb.cc
                          ${LEASEHOLD_KUBE_PROTO_INCLUDE_DIR}/${_stem}.pb.h)
endforeach()
file(MAKE_DIRECTORY ${LEASEHOLD_KUBE_PROTO_INCLUDE_DIR})
# The modules' directories are mapped to their import paths (protoc's
# VIRTUAL=DISK form): the module cache names them k8s.io/api@VERSION.
add_custom_command(
  OUTPUT ${_kp_outputs}
  COMMAND protobuf::protoc
          --proto_path=k8s.io/api=${LEASEHOLD_K8S_API_DIR}
          --proto_path=k8s.io/apimachinery=${LEASEHOLD_K8S_APIMACHINERY_DIR}
          --cpp_out=lite:${LEASEHOLD_KUBE_PROTO_INCLUDE_DIR}
          ${_kp_protos}
  DEPENDS ${_kp_inputs} protobuf::protoc
  COMMENT "protoc: Kubernetes Lease, WatchEvent and Status messages (lite C++)"
  VERBATIM)
# Targets in other directories (tests/fuzz) depend on this one: a custom
# command's rule reaches only targets of its own directory.
add_custom_target(leasehold_kube_proto_gen DEPENDS ${_kp_outputs})
# Generated code is not ours to warn about.
set_source_files_properties(${LEASEHOLD_KUBE_PROTO_SOURCES} PROPERTIES GENERATED TRUE COMPILE_OPTIONS "-w")
