#ifndef CXINLIAN_SQLITE_SHIM_H
#define CXINLIAN_SQLITE_SHIM_H
#include <sqlite3.h>
#endif
