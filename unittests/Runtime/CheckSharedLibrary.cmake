# cmake -DLIBRARY=libgqa_runtime.so -DREADELF=readelf -P CheckSharedLibrary.cmake
# Fails unless the library links no CUDA library and exports only gqa_*.
execute_process(COMMAND "${READELF}" --dynamic "${LIBRARY}"
  OUTPUT_VARIABLE dynamic RESULT_VARIABLE result)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "readelf --dynamic ${LIBRARY} failed")
endif()
if(dynamic MATCHES "NEEDED[^\n]*(libcuda|libcudart|libnvrtc|libMLIR|libLLVM)")
  message(FATAL_ERROR "${LIBRARY} links ${CMAKE_MATCH_1}:\n${dynamic}")
endif()

execute_process(COMMAND "${READELF}" --dyn-syms --wide "${LIBRARY}"
  OUTPUT_VARIABLE symbols RESULT_VARIABLE result)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "readelf --dyn-syms ${LIBRARY} failed")
endif()
string(REPLACE "\n" ";" lines "${symbols}")
set(exported 0)
foreach(line IN LISTS lines)
  # Defined (section index not UND) global or weak symbols.
  if(line MATCHES "(GLOBAL|WEAK) +DEFAULT +[0-9]+ +([^ ]+)$")
    set(name "${CMAKE_MATCH_2}")
    if(NOT name MATCHES "^gqa_")
      message(FATAL_ERROR "${LIBRARY} exports ${name}, which is not gqa_*")
    endif()
    math(EXPR exported "${exported} + 1")
  endif()
endforeach()
if(exported EQUAL 0)
  message(FATAL_ERROR "${LIBRARY} exports no gqa_* symbol")
endif()
message(STATUS "${LIBRARY}: ${exported} gqa_* symbols, no CUDA library linked")
