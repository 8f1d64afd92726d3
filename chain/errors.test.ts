import { describe, expect, it } from 'vitest';
import {
  ChainInvalidRequestError,
  ChainNotFoundError,
  ChainQueryRejectedError,
  ChainQueryUnimplementedError,
  abciQueryError,
  rpcErrorFromObject,
} from './errors.js';

function summary(err: { code: string; retryable: boolean; name: string }): object {
  return { name: err.name, code: err.code, retryable: err.retryable };
}

describe('abciQueryError', () => {
  it('maps sdk/22 (ErrKeyNotFound, what baseapp makes of gRPC NotFound) to not-found by code alone', () => {
    const err = abciQueryError('claim x', 22, 'sdk', 'claim not found: key not found');
    expect(err).toBeInstanceOf(ChainNotFoundError);
    expect(summary(err)).toEqual({ name: 'ChainNotFoundError', code: 'CHAIN_NOT_FOUND', retryable: false });
  });

  it('maps sdk/38 (ErrNotFound) to not-found as well', () => {
    const err = abciQueryError('claim x', 38, 'sdk', 'claim not found: not found');
    expect(summary(err)).toEqual({ name: 'ChainNotFoundError', code: 'CHAIN_NOT_FOUND', retryable: false });
  });

  it('maps a NotFound gRPC text under another code to not-found', () => {
    const err = abciQueryError('application a', 6, 'sdk', 'rpc error: code = NotFound desc = app not found');
    expect(summary(err)).toEqual({ name: 'ChainNotFoundError', code: 'CHAIN_NOT_FOUND', retryable: false });
  });

  it('maps the bare poktroll claim/proof not-found codes to not-found', () => {
    expect(abciQueryError('claim', 1106, 'proof', 'claim not found')).toBeInstanceOf(ChainNotFoundError);
    expect(abciQueryError('proof', 1107, 'proof', 'proof not found')).toBeInstanceOf(ChainNotFoundError);
    expect(abciQueryError('x', 1106, 'session', 'other')).toBeInstanceOf(ChainQueryRejectedError);
  });

  it('maps "unknown query path" and gRPC Unimplemented to unimplemented', () => {
    expect(abciQueryError('cupr', 6, 'sdk', 'unknown query path: unknown request')).toBeInstanceOf(
      ChainQueryUnimplementedError,
    );
    const err = abciQueryError('cupr', 1, 'x', 'rpc error: code = Unimplemented desc = unknown method');
    expect(summary(err)).toEqual({
      name: 'ChainQueryUnimplementedError',
      code: 'CHAIN_QUERY_UNIMPLEMENTED',
      retryable: false,
    });
  });

  it('maps sdk/18 and InvalidArgument to invalid request', () => {
    expect(abciQueryError('s', 18, 'sdk', 'invalid request')).toBeInstanceOf(ChainInvalidRequestError);
    const err = abciQueryError('s', 6, 'sdk', 'rpc error: code = InvalidArgument desc = bad address');
    expect(summary(err)).toEqual({
      name: 'ChainInvalidRequestError',
      code: 'CHAIN_INVALID_REQUEST',
      retryable: false,
    });
  });

  it('keeps other failures as rejected, retryable only for transient gRPC codes', () => {
    const internal = abciQueryError('session', 6, 'sdk', 'rpc error: code = Internal desc = app not active');
    expect(internal).toBeInstanceOf(ChainQueryRejectedError);
    expect({ ...summary(internal), abciCode: (internal as ChainQueryRejectedError).abciCode }).toEqual({
      name: 'ChainQueryRejectedError',
      code: 'CHAIN_QUERY_REJECTED',
      retryable: false,
      abciCode: 6,
    });
    const busy = abciQueryError('session', 6, 'sdk', 'rpc error: code = Unavailable desc = busy');
    expect(summary(busy)).toEqual({
      name: 'ChainQueryRejectedError',
      code: 'CHAIN_QUERY_REJECTED',
      retryable: true,
    });
  });
});

describe('rpcErrorFromObject', () => {
  it('treats request-shape errors as final and internal errors as retryable', () => {
    const bad = rpcErrorFromObject('block', { code: -32602, message: 'Invalid params', data: 'bad height' });
    expect({ code: bad.code, rpcCode: bad.rpcCode, data: bad.data, retryable: bad.retryable }).toEqual({
      code: 'CHAIN_RPC_ERROR',
      rpcCode: -32602,
      data: 'bad height',
      retryable: false,
    });
    const internal = rpcErrorFromObject('block', {
      code: -32603,
      message: 'Internal error',
      data: 'height 9 must be less than or equal to the current blockchain height 8',
    });
    expect({ rpcCode: internal.rpcCode, retryable: internal.retryable }).toEqual({
      rpcCode: -32603,
      retryable: true,
    });
  });

  it('treats "not found" answers as final', () => {
    const e = rpcErrorFromObject('tx', {
      code: -32603,
      message: 'Internal error',
      data: 'tx (AB) not found',
    });
    expect({ rpcCode: e.rpcCode, retryable: e.retryable }).toEqual({ rpcCode: -32603, retryable: false });
  });

  it('survives a non-object error', () => {
    const e = rpcErrorFromObject('x', 'boom');
    expect({ rpcCode: e.rpcCode, data: e.data, retryable: e.retryable }).toEqual({
      rpcCode: 0,
      data: '',
      retryable: true,
    });
  });
});
