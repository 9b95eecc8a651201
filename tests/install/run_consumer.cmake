# ctest script: install, then configure/build/run the consumer two ways.
file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)

function(run)
  execute_process(COMMAND ${ARGV} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGV}")
  endif()
endfunction()

run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})
foreach(f include/daxstore/mapping.h include/daxstore/daxstore.h include/daxstore/status.h
          lib/libdaxstore.so lib/cmake/daxstore/daxstoreConfig.cmake
          lib/pkgconfig/daxstore.pc bin/daxstore)
  if(NOT EXISTS ${prefix}/${f})
    message(FATAL_ERROR "install is missing ${f}")
  endif()
endforeach()

# 1. CMake package.
run(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/build -G ${GENERATOR}
    -DCMAKE_PREFIX_PATH=${prefix})
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
run(${WORK_DIR}/build/consumer ${WORK_DIR}/consumer.img)

# 2. pkg-config, by hand with the compiler.
set(ENV{PKG_CONFIG_PATH} ${prefix}/lib/pkgconfig)
execute_process(COMMAND pkg-config --cflags --libs daxstore
                OUTPUT_VARIABLE flags RESULT_VARIABLE rc
                OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "pkg-config does not know daxstore")
endif()
separate_arguments(flags UNIX_COMMAND "${flags}")
run(c++ -std=c++20 ${SOURCE_DIR}/main.cc ${flags} -Wl,-rpath,${prefix}/lib
    -o ${WORK_DIR}/consumer-pc)
run(${WORK_DIR}/consumer-pc ${WORK_DIR}/consumer-pc.img)

# 3. The C ABI from C: the example, strict C11, against the installed header.
run(cc -std=c11 -Wall -Werror -pedantic ${C_EXAMPLE} ${flags}
    -Wl,-rpath,${prefix}/lib -o ${WORK_DIR}/copy_in_out)
run(${WORK_DIR}/copy_in_out ${WORK_DIR}/c-abi.img)
