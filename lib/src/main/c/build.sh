#!/bin/sh
# Builds prefork's JNI library for this machine's platform: build.sh <JDK home> <output .so>.
# The Maven build runs it (lib/pom.xml, execution jni-library); CC picks another C compiler.
set -eu
jdk=$1
out=$2
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$(dirname "$out")"
# -ffile-prefix-map and --build-id=none keep the file the same from one checkout to another
# (reproducible jars); -s drops the symbol table, JNI_OnLoad stays as the one dynamic symbol.
"${CC:-cc}" -std=gnu11 -O2 -fPIC -shared -fvisibility=hidden \
  -Wall -Wextra -Wno-unused-parameter \
  -I"$jdk/include" -I"$jdk/include/linux" \
  -ffile-prefix-map="$here"=. -Wl,--build-id=none -Wl,-z,noexecstack -s \
  -o "$out" "$here/prefork.c"
