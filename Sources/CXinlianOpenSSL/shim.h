#ifndef CXINLIAN_OPENSSL_SHIM_H
#define CXINLIAN_OPENSSL_SHIM_H
#include <openssl/evp.h>
#include <openssl/ec.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include <openssl/ecdsa.h>
#include <openssl/obj_mac.h>
#endif
